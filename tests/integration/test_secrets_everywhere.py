"""Every secret of the corpus, through every place a client controls, never reaches a log or an error.

The corpus (tests/fixtures/secrets.json, 62 kinds) goes through the real generation function: query
strings raw and percent-encoded, JSON bodies, headers (User-Agent, X-Request-Id,
Function-Execution-Id, X-Forwarded-For and others), path ids, and values cut at a truncation point.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from shared.logging import capture_logs
from tests.servers import make_client

FIXTURES = json.loads((Path(__file__).parent.parent / "fixtures" / "secrets.json").read_text())
SECRETS: list[dict[str, Any]] = FIXTURES["secrets"]


def _secret(entry: dict[str, Any]) -> str:
    return "".join(entry["parts"])


def _in_context(entry: dict[str, Any]) -> str:
    return str(entry["template"]).replace("{secret}", _secret(entry))


def _one_line(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")  # a header value cannot hold a line break


def _fragments(secret: str) -> set[str]:
    """The secret and every 16-character piece of it, as sent and percent-encoded."""
    found: set[str] = set()
    for form in {secret, quote(secret, safe=""), _one_line(secret)}:
        found.add(form)
        found.update(form[i : i + 16] for i in range(max(0, len(form) - 15)))
    return found


Send = Callable[[Any, str], Any]
PLACES: dict[str, Send] = {
    "query_raw": lambda c, t: c.get("/v1/generations/gen_0", query_string="note=" + _one_line(t)),
    "query_encoded": lambda c, t: c.get("/v1/generations/gen_0", query_string="note=" + quote(t, safe="")),
    "query_encoded_plus": lambda c, t: c.get("/v1/generations/gen_0",
                                             query_string="note=" + quote(t, safe="").replace("%20", "+")),
    "query_double_encoded": lambda c, t: c.get("/v1/generations/gen_0",
                                               query_string="note=" + quote(quote(t, safe=""), safe="")),
    "query_name": lambda c, t: c.get("/v1/generations/gen_0", query_string=quote(t, safe="") + "=1"),
    "body_value": lambda c, t: c.post("/v1/generations", json={"kind": "image", "prompt": "x", "note": t}),
    "body_key": lambda c, t: c.post("/v1/generations", json={"kind": "image", "prompt": "x", t: 1}),
    "body_not_json": lambda c, t: c.post("/v1/generations", data=t, content_type="application/json"),
    "body_bad_value": lambda c, t: c.post("/v1/generations", json={"kind": t, "prompt": "x"}),
    "path_id": lambda c, t: c.get("/v1/generations/" + quote(t, safe="")),
    "path_route": lambda c, t: c.get("/v2/" + quote(t, safe="")),
    "user_agent": lambda c, t: c.get("/v1/generations/gen_0", headers={"User-Agent": _one_line(t)}),
    "user_agent_cut": lambda c, t: c.get("/v1/generations/gen_0",
                                         headers={"User-Agent": "M" * 467 + " " + _one_line(t)}),
    "request_id": lambda c, t: c.get("/v1/generations/gen_0", headers={"X-Request-Id": _one_line(t)}),
    "execution_id": lambda c, t: c.get("/v1/generations/gen_0",
                                       headers={"Function-Execution-Id": _one_line(t)}),
    "execution_id_cut": lambda c, t: c.get("/v1/generations/gen_0",
                                           headers={"Function-Execution-Id": "e" * 239 + " " + _one_line(t)}),
    "forwarded_for": lambda c, t: c.get("/v1/generations/gen_0",
                                        headers={"X-Forwarded-For": f"{_one_line(t)}, 10.0.0.1"}),
    "forwarded_for_last": lambda c, t: c.get("/v1/generations/gen_0", headers={"X-Forwarded-For": _one_line(t)}),
    "other_header": lambda c, t: c.get("/v1/generations/gen_0", headers={"X-Debug-Note": _one_line(t)}),
    "idempotency_key": lambda c, t: c.post("/v1/generations", json={"kind": "video", "prompt": "x", "fps": 1},
                                           headers={"Idempotency-Key": _one_line(t)}),
    "authorization": lambda c, t: c.get("/v1/generations/gen_0", headers={"Authorization": _one_line(t)}),
    "path_cut": lambda c, t: c.get("/v2/" + "p" * 189 + "/" + quote(t, safe="")),
}


@pytest.fixture
def client(db: Any, api_key: str) -> Iterator[Any]:
    yield make_client("generation", key=api_key)


def _leaks(client: Any) -> dict[str, list[str]]:
    leaked: dict[str, list[str]] = {}
    for entry in SECRETS:
        fragments = _fragments(_secret(entry))
        for place, send in PLACES.items():
            with capture_logs() as lines:
                response = send(client, _in_context(entry))
            seen = json.dumps(lines, ensure_ascii=False) + response.get_data(as_text=True)
            seen += json.dumps(dict(response.headers))
            if any(fragment in seen for fragment in fragments):
                leaked.setdefault(entry["kind"], []).append(place)
    return leaked


def test_no_secret_of_the_corpus_reaches_a_log_line_or_an_error_body(client: Any) -> None:
    leaked = _leaks(client)
    kinds = {entry["kind"] for entry in SECRETS}
    assert len(kinds) >= 55
    assert leaked == {}, f"{len(leaked)}/{len(kinds)} kinds leaked: {leaked}"


def test_a_secret_straddling_a_truncation_point_is_never_logged(client: Any) -> None:
    secret = "postgres://user:" + "Hunter2Secret" + "@db.internal/app"
    for pad in range(455, 500, 3):  # the password cut at every offset around the 500-character limit
        with capture_logs() as lines:
            client.get("/v1/generations/gen_0", headers={"User-Agent": "M" * pad + secret})
        assert [line for line in lines if "httpRequest" in line]
        assert "Hunt" not in json.dumps(lines), pad


def test_an_id_of_another_shape_is_not_echoed_in_not_found(client: Any) -> None:
    key = "AIzaSy" + "DaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe"
    response = client.get("/v1/generations/" + "x" * 30 + key)
    assert response.status_code == 404
    assert "AIza" not in response.get_data(as_text=True)
    ours = client.get("/v1/generations/gen_" + "0" * 32)
    assert "gen_" + "0" * 32 in ours.get_json()["error"]["message"]  # our own ids are still named


def test_a_bad_page_token_is_named_not_redacted(db: Any, api_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client("scheduling", key=api_key)
    response = client.get("/v1/schedules", query_string="page_token=%FF")
    assert response.status_code == 400
    message = response.get_json()["error"]["message"]
    assert message == "page_token: is not a token from a previous page"


def test_remote_ip_is_the_address_the_platform_appended_and_only_an_ip(client: Any) -> None:
    def remote_ip(forwarded: str | None) -> str:
        headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
        with capture_logs() as lines:
            client.get("/healthz", headers=headers)
        (access,) = [line for line in lines if "httpRequest" in line]
        return str(access["httpRequest"]["remoteIp"])

    assert remote_ip("203.0.113.9, 198.51.100.7") == "198.51.100.7"  # the client wrote the first one
    assert remote_ip("not-an-ip <script>") == "127.0.0.1"
    assert remote_ip("1.2.3.4, not-an-ip <script>") == "127.0.0.1"
    assert remote_ip("2001:db8::1") == "2001:db8::1"
    assert remote_ip(None) == "127.0.0.1"
