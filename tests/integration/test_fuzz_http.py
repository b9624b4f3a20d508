"""Schemathesis against every route of both HTTP functions, with a valid key, on the real PostgreSQL: no 5xx,
every response as `GET /openapi.json` documents it, every error in the contract's AIP-193 shape.

Each operation is fuzzed with schema-valid and schema-invalid requests, then again with path variables
naming resources that exist. Bounded for `make test`: FUZZ_EXAMPLES examples per operation and mode
(default 15); `make fuzz` runs with more.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from shared import config
from tests.servers import make_client, serve

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
# What a body must never reveal (contract section 5): tracebacks, driver errors, SQL, source paths.
LEAKS = re.compile(r"Traceback \(most recent|File \"[^\"]+\", line \d|site-packages|sqlalchemy\.|pg8000\.|psycopg"
                   r"|\b(SELECT|INSERT|UPDATE) .+ (FROM|INTO|SET) |\w+(Error|Exception): ")
CHECKS = SchemathesisConfig.from_dict({"checks": {
    # A body over MAX_REQUEST_BYTES is rightly refused with 413, which schemathesis does not count by default.
    "negative_data_rejection": {"expected-statuses": [400, 401, 403, 404, 405, 409, 413, 415, 429]},
    # The schema cannot say which fields each model takes (the capability table), so a schema-valid
    # request may rightly be a 400.
    "positive_data_acceptance": {"enabled": False},
}})
FUZZ_ENV = {
    "GENERATION_BACKEND": "local", "LOCAL_VIDEO_DELAY_SECONDS": "0", "VIDEO_POLL_INTERVAL_SECONDS": "0",
    "PUBSUB_BATCH_TOPIC": "batches", "PUBSUB_EMULATOR_HOST": "127.0.0.1:9", "PUBSUB_PUBLISH_TIMEOUT_SECONDS": "0.2",
    # Limits stay on (the limiter's upsert runs on every request) but high enough not to hide routes.
    "RATE_LIMIT_GENERATE": "1000000", "RATE_LIMIT_BATCH_ITEMS": "1000000", "RATE_LIMIT_SCHEDULE": "1000000",
    "RATE_LIMIT_READ": "1000000",
}


def error_contract(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every non-2xx: AIP-193 with code = status, one ErrorInfo, the echoed request id, Retry-After on 429/503."""
    if response.status_code < 400:
        return None
    assert response.headers.get("content-type", [""])[0].startswith("application/json"), "error is not JSON"
    error = response.json()["error"]
    assert error["code"] == response.status_code, f"code {error['code']} on a {response.status_code}"
    types = [d["@type"].rsplit(".", 1)[-1] for d in error["details"]]
    assert types.count("ErrorInfo") == 1, f"details {types}"
    request_ids = [d["requestId"] for d in error["details"] if d["@type"].endswith("RequestInfo")]
    assert request_ids == response.headers["x-request-id"], "RequestInfo differs from X-Request-Id"
    retry_after = response.headers.get("retry-after")
    assert (retry_after is not None) == (response.status_code in (429, 503)) == ("RetryInfo" in types)
    assert not LEAKS.search(response.content.decode("utf-8", "replace")), "the body leaks internals"
    return True


def fuzz(operation: Any, key: str, path_parameters: dict[str, str] | None = None, examples: int = EXAMPLES,
         ) -> list[str]:
    """Run both generation modes against one operation; the failures, each with its minimal example."""
    failures = []
    for mode in MODES:
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

        @given(case=strategy)
        @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck),
                  phases=[Phase.explicit, Phase.generate, Phase.shrink], report_multiple_bugs=False)
        def run(case: Any) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, additional_checks=[error_contract])

        try:
            run()
        except Unsatisfiable:
            continue  # nothing in this operation can be made invalid (no body, query or path variable)
        except Exception as err:
            # Trimmed: a reproduction can hold a 1 MiB body.
            failures.append(f"{operation.label} ({mode}, {path_parameters or 'generated ids'}):\n{str(err)[:3000]}")
    return failures


@pytest.fixture
def fuzz_env(db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The env both functions are fuzzed under: local backend, unreachable Pub/Sub, generous rate limits."""
    env = {**FUZZ_ENV, "LOCAL_DATA_DIR": str(tmp_path / "media")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config.get_settings.cache_clear()
    return env


def existing_resources(client: Any) -> dict[str, list[str]]:
    """Create one of everything, so fuzzing also reaches resources that exist: path variable -> ids."""
    image = {"kind": "image", "prompt": "a lighthouse"}
    made: dict[str, list[str]] = {}
    for path, body, variable in (
        ("/v1/generations", image, "job_id"), ("/v1/generations", {"kind": "video", "prompt": "waves"}, "job_id"),
        ("/v1/batches", {"items": [image, image]}, "batch_id"),
        ("/v1/schedules", {"request": image, "cron": "0 9 * * 1-5", "timezone": "Europe/Paris"}, "schedule_id"),
        ("/v1/schedules", {"requests": [image], "run_at": "2099-01-01T00:00:00Z"}, "schedule_id"),
    ):
        response = client.post(path, json=body)
        if response.status_code != 404:  # each function serves only its own routes
            assert response.status_code in (201, 202), response.get_json()
            made.setdefault(variable, []).append(response.get_json()["id"])
    return made


def deletes_last(operations: list[Any]) -> Iterator[Any]:
    """Operations in document order, DELETE last, so the others still see the resources it removes."""
    yield from sorted(operations, key=lambda op: op.method.upper() == "DELETE")


@pytest.mark.parametrize("function", ["generation", "scheduling"])
def test_every_route_answers_fuzzed_requests_as_documented(
    function: str, fuzz_env: dict[str, str], api_key: str, admin_key: str
) -> None:
    client = make_client(function, key=api_key)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", client.application, config=CHECKS)
    operations = [result.ok() for result in schema.get_all_operations()]
    resources = existing_resources(client)
    failures: list[str] = []
    for operation in deletes_last(operations):
        key = admin_key if operation.path.endswith(":tick") else api_key
        failures += fuzz(operation, key)
        variables = re.findall(r"{(\w+)}", operation.path)
        for resource_id in resources.get(variables[0], []) if variables else []:
            failures += fuzz(operation, key, {variables[0]: resource_id})
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("function", ["generation", "scheduling"])
def test_a_served_process_answers_fuzzed_requests_as_documented(
    function: str, fuzz_env: dict[str, str], api_key: str, admin_key: str, db: Any, tmp_path: Path
) -> None:
    with serve(function, {**fuzz_env, "DATABASE_URL": db.url}, tmp=tmp_path) as served:
        schema = schemathesis.openapi.from_url(served.url + "/openapi.json", config=CHECKS)
        failures: list[str] = []
        for result in schema.get_all_operations():
            operation = result.ok()
            key = admin_key if operation.path.endswith(":tick") else api_key
            failures += fuzz(operation, key, examples=max(3, EXAMPLES // 3))  # HTTP is slower than WSGI
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize(("function", "method", "path", "body", "status", "field"), [
    ("generation", "GET", "/v1/generations/gen_%00", None, 404, None),
    ("generation", "GET", "/v1/batches/bat_%00", None, 404, None),
    ("scheduling", "DELETE", "/v1/schedules/sch_%00", None, 404, None),
    ("generation", "POST", "/v1/generations", {"kind": "image", "prompt": "a\x00b"}, 400, "prompt"),
    ("generation", "POST", "/v1/batches", {"items": [{"kind": "image", "prompt": "ok"},
                                                     {"kind": "image", "prompt": "x", "aspect_ratio": "1\x00"}]},
     400, "items[1].aspect_ratio"),
    ("scheduling", "POST", "/v1/schedules", {"request": {"kind": "image", "prompt": "x\x00"}, "cron": "0 9 * * *"},
     400, "request.prompt"),
], ids=["job id", "batch id", "schedule id", "prompt", "batch item field", "schedule request"])
def test_a_nul_character_found_by_fuzzing_is_a_4xx_never_a_500(
    function: str, method: str, path: str, body: Any, status: int, field: str | None, fuzz_env: dict[str, str],
    api_key: str,
) -> None:
    """U+0000 reached PostgreSQL (which cannot store it) and came back as 500 QUERY_FAILED."""
    response = make_client(function, key=api_key).open(path, method=method, json=body)

    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["code"] == status
    if field:
        assert error["details"][1]["fieldViolations"] == [
            {"field": field, "description": "must not contain NUL (U+0000) characters"}]
