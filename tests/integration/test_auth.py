"""Every /v1 route behind API keys: the good, the malformed, expired, revoked, wrong-scope and
other owners' keys, and Cloud Scheduler's OIDC token on the tick."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import apikeys, config, database
from tests.conftest import mint_key
from tests.servers import make_client
from tests.unit.test_oidc import AUDIENCE, SCHEDULER_SA, CertsServer, SigningKey

IMAGE = {"kind": "image", "prompt": "a quiet harbour"}
SCHEDULE = {"request": IMAGE, "cron": "0 9 * * *", "timezone": "Europe/Paris"}
# (function, method, path template, body, scope the route needs)
ROUTES = [
    ("generation", "POST", "/v1/generations", IMAGE, "generate"),
    ("generation", "GET", "/v1/generations/{job}", None, "generate"),
    ("generation", "POST", "/v1/batches", {"items": [IMAGE]}, "batch"),
    ("generation", "GET", "/v1/batches/{batch}", None, "batch"),
    ("scheduling", "POST", "/v1/schedules", SCHEDULE, "schedule"),
    ("scheduling", "GET", "/v1/schedules/{schedule}", None, "schedule"),
    ("scheduling", "POST", "/v1/schedules/{schedule}:pause", None, "schedule"),
    ("scheduling", "DELETE", "/v1/schedules/{schedule}", None, "schedule"),
]
OTHER_SCOPE = {"generate": "batch", "batch": "schedule", "schedule": "generate"}


@pytest.fixture
def world(db: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> dict[str, Any]:
    """Two owners' keys, and one resource of each kind owned by the first."""
    monkeypatch.setenv("PUBSUB_BATCH_TOPIC", "batches")
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")
    monkeypatch.setenv("PUBSUB_PUBLISH_TIMEOUT_SECONDS", "0.2")
    monkeypatch.setenv("LOCAL_DATA_DIR", str(tmp_path))
    config.get_settings.cache_clear()
    owner, stranger = mint_key("owner"), mint_key("stranger")
    gen, sched = make_client("generation", key=owner), make_client("scheduling", key=owner)
    ids = {
        "job": gen.post("/v1/generations", json=IMAGE).get_json()["id"],
        "batch": gen.post("/v1/batches", json={"items": [IMAGE]}).get_json()["id"],
        "schedule": sched.post("/v1/schedules", json=SCHEDULE).get_json()["id"],
    }
    return {"owner": owner, "stranger": stranger, "ids": ids}


def call(function: str, method: str, path: str, body: Any, ids: dict[str, str], auth: str | None) -> Any:
    client = make_client(function)
    headers = {"Authorization": auth} if auth is not None else {}
    return client.open(path.format(**ids), method=method, json=body, headers=headers)


def error_reason(response: Any) -> str:
    return str(response.get_json()["error"]["details"][0]["reason"])


def with_key(name: str, scopes: tuple[str, ...], **kwargs: Any) -> tuple[str, str]:
    pepper = config.get_settings().api_key_pepper
    assert pepper is not None
    with database.session_scope() as session:
        key, record = apikeys.create_key(session, name, scopes, pepper=pepper.get_secret_value(), **kwargs)
    return key, record.id


@pytest.mark.parametrize(("function", "method", "path", "body", "scope"), ROUTES)
def test_each_route_accepts_its_owner_and_refuses_everyone_else(
    world: dict[str, Any], function: str, method: str, path: str, body: Any, scope: str
) -> None:
    ids, owner = world["ids"], world["owner"]
    key_id, secret = owner[3:15], owner[16:]
    expired, _ = with_key("old", (scope,), expires_at=datetime.now(UTC) - timedelta(minutes=1))
    revoked, revoked_id = with_key("gone", (scope,))
    with database.session_scope() as session:
        apikeys.revoke_key(session, revoked_id)
    wrong_scope, _ = with_key("narrow", (OTHER_SCOPE[scope],))
    cases = {
        None: (401, None),
        "": (401, None),
        "Basic dXNlcjpwYXNz": (401, None),
        "Bearer": (401, None),
        f"Bearer gm_{key_id}_{'A' * len(secret)}": (401, "API_KEY_INVALID"),
        f"Bearer gm_{'0' * 12}_{secret}": (401, "API_KEY_INVALID"),
        f"Bearer {expired}": (403, "API_KEY_EXPIRED"),
        f"Bearer {revoked}": (403, "API_KEY_REVOKED"),
        f"Bearer {wrong_scope}": (403, "INSUFFICIENT_SCOPE"),
    }
    for auth, (status, reason) in cases.items():
        response = call(function, method, path, body, ids, auth)
        assert response.status_code == status, (auth, response.get_json())
        if reason:
            assert error_reason(response) == reason
        if status == 401:
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert secret not in response.get_data(as_text=True)
    if "{" in path:  # another owner's resource does not exist for them
        response = call(function, method, path, body, ids, f"Bearer {world['stranger']}")
        assert response.status_code == 404 and error_reason(response) == "NOT_FOUND"
    assert call(function, method, path, body, ids, f"Bearer {owner}").status_code < 300


def test_the_key_id_is_the_user_id_in_logs_and_the_key_never_is(world: dict[str, Any]) -> None:
    from shared.logging import capture_logs

    owner = world["owner"]
    with capture_logs() as logs:
        call("generation", "GET", "/v1/generations/{job}", None, world["ids"], f"Bearer {owner}")
    assert logs and all(line.get("user_id") == owner[3:15] for line in logs if "httpRequest" in line)
    assert owner[16:] not in json.dumps(logs)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.one_of(
    st.text(max_size=200),
    st.text(max_size=120).map(lambda t: f"Bearer {t}"),
    st.from_regex(r"Bearer gm_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", fullmatch=True),
))
def test_no_fuzzed_authorization_header_gets_in_or_crashes(world: dict[str, Any], header: str) -> None:
    try:
        response = call("generation", "GET", "/v1/generations/{job}", None, world["ids"], header)
    except ValueError:  # werkzeug refuses header values with newlines before anything is sent
        return
    assert response.status_code in (401, 403), (header, response.status_code)


def test_tick_takes_an_admin_key_but_not_a_plain_one(world: dict[str, Any], admin_key: str) -> None:
    tick = make_client("scheduling")
    assert tick.post("/v1/schedules:tick", headers={"Authorization": f"Bearer {admin_key}"}).status_code == 200
    refused = tick.post("/v1/schedules:tick", headers={"Authorization": f"Bearer {world['owner']}"})
    assert refused.status_code == 403 and error_reason(refused) == "INSUFFICIENT_SCOPE"
    assert tick.post("/v1/schedules:tick").status_code == 401


def test_tick_takes_cloud_schedulers_oidc_token(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    google, attacker = SigningKey("kid-1"), SigningKey("kid-1")
    certs = CertsServer([google])
    try:
        monkeypatch.setenv("SCHEDULER_AUDIENCE", AUDIENCE)
        monkeypatch.setenv("SCHEDULER_SERVICE_ACCOUNT", SCHEDULER_SA)
        monkeypatch.setenv("SCHEDULER_CERTS_URL", certs.url)
        config.get_settings.cache_clear()
        tick = make_client("scheduling")

        def post(token: str) -> Any:
            return tick.post("/v1/schedules:tick", headers={"Authorization": f"Bearer {token}"})

        assert post(google.token()).status_code == 200
        assert post(google.token(aud="https://elsewhere")).status_code == 401
        assert post(google.token(exp=1)).status_code == 401
        assert post(google.token(email="intruder@example.com")).status_code == 401
        assert post(attacker.token()).status_code == 401
    finally:
        certs.close()


def test_auth_errors_read_cleanly_after_masking(world: dict[str, Any]) -> None:
    response = call("generation", "GET", "/v1/generations/{job}", None, world["ids"], None)
    assert "[REDACTED]" not in response.get_json()["error"]["message"]
