"""Every non-2xx answer, whoever raised it, in the contract's AIP-193 format and leaking nothing."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest

from shared.logging import capture_logs
from tests.servers import ROOT, make_client

PROBE = ROOT / "tests" / "functions" / "probe" / "main.py"
LEAKS = ("Traceback", "RuntimeError", "hunter2", "/srv/app", "SELECT", ".py", "Exception")


@pytest.fixture
def client(db: Any) -> Any:
    return make_client("probe", PROBE)


def assert_error(response: Any, code: int, reason: str | None = None) -> dict[str, Any]:
    """Check the AIP-193 shape, and that nothing internal leaked; return the error object."""
    assert response.status_code == code
    assert response.headers["Content-Type"].startswith("application/json")
    text = response.get_data(as_text=True)
    for leak in LEAKS:
        assert leak not in text
    error = json.loads(text)["error"]
    assert error["code"] == code
    assert re.fullmatch(r"[A-Z_]+", error["status"])
    infos = [d for d in error["details"] if d["@type"].endswith("google.rpc.ErrorInfo")]
    assert len(infos) == 1 and infos[0]["domain"] == "genmedia"
    if reason:
        assert infos[0]["reason"] == reason
    request_info = [d for d in error["details"] if d["@type"].endswith("RequestInfo")]
    assert request_info[0]["requestId"] == response.headers["X-Request-Id"]
    if code in (429, 503):
        assert int(response.headers["Retry-After"]) >= 1
        assert [d for d in error["details"] if d["@type"].endswith("RetryInfo")]
    return error


def post(client: Any, body: Any, **kwargs: Any) -> Any:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
    return client.post("/v1/items", data=data, headers=headers, **kwargs)


def test_valid_request_passes_through(client: Any) -> None:
    response = post(client, {"prompt": "a red fox"})
    assert response.status_code == 201
    assert response.get_json()["prompt"] == "a red fox"


def test_unknown_route_is_404(client: Any) -> None:
    assert_error(client.get("/v1/nothing-here"), 404, "NOT_FOUND")


def test_functions_framework_own_404_is_in_our_format(client: Any) -> None:
    assert_error(client.get("/robots.txt"), 404)
    assert_error(client.get("/favicon.ico"), 404)


def test_wrong_method_is_405_with_allow(client: Any) -> None:
    response = client.delete("/v1/items")
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in response.headers["Allow"]


def test_malformed_json_is_400(client: Any) -> None:
    error = assert_error(post(client, b'{"prompt": "x",'), 400, "INVALID_JSON")
    assert error["message"] == "body: is not valid JSON"


def test_invalid_utf8_is_400(client: Any) -> None:
    assert_error(post(client, b'{"prompt": "\xff\xfe"}'), 400, "INVALID_JSON")


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42", b"null", b"true"])
def test_top_level_value_that_is_not_an_object_is_400(client: Any, body: bytes) -> None:
    error = assert_error(post(client, body), 400, "INVALID_JSON")
    assert error["message"] == "body: must be a JSON object"


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_400(client: Any, constant: bytes) -> None:
    assert_error(post(client, b'{"prompt": "x", "count": ' + constant + b"}"), 400, "INVALID_JSON")


def test_absurd_nesting_is_400_not_500(client: Any) -> None:
    assert_error(post(client, b'{"a":' * 100_000 + b"1" + b"}" * 100_000), 400)
    assert_error(post(client, b'{"tags":' + b"[" * 50 + b"]" * 50 + b"}"), 400, "INVALID_JSON")


def test_body_over_the_limit_is_413(client: Any) -> None:
    huge = json.dumps({"prompt": "x" * (1024 * 1024 + 10)})
    assert_error(post(client, huge), 413, "PAYLOAD_TOO_LARGE")


def test_chunked_body_over_the_limit_is_413(client: Any) -> None:
    body = io.BytesIO(b'{"prompt": "' + b"x" * (1100 * 1024) + b'"}')
    response = client.post("/v1/items", input_stream=body, environ_overrides={"wsgi.input_terminated": True},
                           headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


def test_wrong_content_type_is_415(client: Any) -> None:
    response = client.post("/v1/items", data="prompt=x", headers={"Content-Type": "text/plain"})
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert_error(client.post("/v1/items", data="{}"), 415)


def test_missing_field_names_the_field(client: Any) -> None:
    error = assert_error(post(client, {}), 400, "VALIDATION_FAILED")
    violations = next(d for d in error["details"] if d["@type"].endswith("BadRequest"))["fieldViolations"]
    assert violations == [{"field": "prompt", "description": "is required"}]


def test_every_bad_field_is_listed_without_echoing_values(client: Any) -> None:
    error = assert_error(post(client, {"prompt": "", "count": 99, "tags": ["ok", 5], "x": "sk_live_abc"}), 400)
    fields = {v["field"] for d in error["details"] if d["@type"].endswith("BadRequest") for v in d["fieldViolations"]}
    assert fields == {"prompt", "count", "tags[1]", "x"}
    assert "sk_live_abc" not in json.dumps(error)


def test_unexpected_exception_is_a_generic_500_and_logs_the_traceback(client: Any) -> None:
    with capture_logs() as logs:
        response = client.get("/boom")
    error = assert_error(response, 500, "INTERNAL")
    assert error["message"] == "internal error"
    errors = [line for line in logs if line["severity"] == "ERROR"]
    assert errors and "RuntimeError" in errors[0]["stack_trace"]
    assert "hunter2" not in json.dumps(logs)


@pytest.mark.parametrize(
    ("name", "code"),
    [("QuotaExceededError", 429), ("RateLimitError", 429), ("PoolExhaustedError", 503),
     ("DatabaseConnectionError", 503), ("VertexAIError", 503), ("UnauthorizedError", 401),
     ("ForbiddenError", 403), ("ConflictError", 409), ("QueryError", 500), ("UpstreamTimeoutError", 503)],
)
def test_raised_errors_answer_their_own_status(client: Any, name: str, code: int) -> None:
    response = client.get(f"/raise/{name}")
    assert_error(response, code)
    if code == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_not_found_message_is_the_public_one(client: Any) -> None:
    error = assert_error(client.get("/v1/items/abc"), 404)
    assert error["message"] == "item abc not found"


def test_request_id_is_echoed_when_sane(client: Any) -> None:
    response = client.get("/healthz", headers={"X-Request-Id": "req-12345678"})
    assert response.headers["X-Request-Id"] == "req-12345678"


@pytest.mark.parametrize("given", ["", "short", "has spaces in it", "x" * 300, "<script>alert(1)</script>"])
def test_request_id_is_generated_when_absent_or_not_sane(client: Any, given: str) -> None:
    response = client.get("/healthz", headers={"X-Request-Id": given} if given else {})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-Id"])


def test_request_id_is_echoed_on_errors_too(client: Any) -> None:
    response = client.get("/nope", headers={"X-Request-Id": "req-abcdefgh"})
    assert response.headers["X-Request-Id"] == "req-abcdefgh"
    assert assert_error(response, 404)["details"][-1]["requestId"] == "req-abcdefgh"


def test_healthz_is_ok_without_io(client: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_reports_the_pool_and_breakers_to_an_admin_key(client: Any, admin_key: str) -> None:
    response = client.get("/readyz", headers={"Authorization": f"Bearer {admin_key}"})
    assert response.status_code == 200
    checks = response.get_json()["checks"]
    assert checks["pool"]["max_connections"] >= 1 and checks["pool"]["checked_out"] == 0
    assert "breakers" in checks


def test_anonymous_readyz_says_ready_and_nothing_about_the_internals(client: Any) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}  # no pool statistics, no breaker states


def test_readyz_with_a_key_that_is_not_admin_is_refused(client: Any, api_key: str) -> None:
    assert_error(client.get("/readyz", headers={"Authorization": f"Bearer {api_key}"}), 403)


def test_readyz_is_503_when_the_database_is_unreachable(client: Any, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Any) -> None:
    from shared import config, database

    monkeypatch.setenv("DATABASE_URL", f"postgresql+pg8000://postgres@/x?unix_sock={tmp_path}/.s.PGSQL.1")
    config.get_settings.cache_clear()
    database.dispose_engine()
    body = assert_error(client.get("/readyz"), 503, "NOT_READY")
    assert body["message"] == "not ready"  # anonymous: not which check failed


def test_every_request_logs_one_http_request_line(client: Any) -> None:
    with capture_logs() as logs:
        client.get("/healthz", headers={"User-Agent": "curl/8", "traceparent":
                                        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
    lines = [line for line in logs if "httpRequest" in line]
    assert len(lines) == 1
    http = lines[0]["httpRequest"]
    assert http["requestMethod"] == "GET" and http["status"] == 200 and http["userAgent"] == "curl/8"
    assert re.fullmatch(r"\d+\.\d+s", http["latency"])
    assert lines[0]["logging.googleapis.com/trace"].endswith("/traces/4bf92f3577b34da6a3ce929d0e0e4736")
    assert lines[0]["logging.googleapis.com/spanId"] == "00f067aa0ba902b7"
    assert lines[0]["request_id"] == lines[0]["request_id"].strip()


def test_errors_never_reflect_a_secret_the_client_sent(client: Any) -> None:
    aws = "AKIA" + "IOSFODNN7EXAMPLE"
    github = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    for response in (client.get(f"/v1/items/{aws}"), client.get(f"/v1/{github}/x"),
                     post(client, {"prompt": "x", github: 1})):
        body = response.get_data(as_text=True)
        assert response.status_code in (400, 404)
        assert aws not in body and github not in body
