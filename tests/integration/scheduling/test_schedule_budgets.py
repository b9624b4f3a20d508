"""Schedules cannot get around scopes, budgets or memory: what a schedule runs is paid for like a request.

The probe of issue 12: a schedule-only key generated through schedules, a key out of batch items
fired 2,000 generations through cron schedules, and twelve 1 MB schedules made a 12 MB list page.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from functions.scheduling import tick
from shared import config
from shared.database import session_scope
from tests.conftest import mint_key
from tests.servers import make_client

IMAGE = {"kind": "image", "prompt": "morning light"}
SOON = (datetime.now(UTC) + timedelta(days=1)).isoformat()


@pytest.fixture(autouse=True)
def _topic(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBSUB_BATCH_TOPIC", "batches")
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")  # nothing listens: rows stay in the outbox
    monkeypatch.setenv("PUBSUB_PUBLISH_TIMEOUT_SECONDS", "0.2")
    config.get_settings.cache_clear()


def client_with(*scopes: str) -> Any:
    return make_client("scheduling", key=mint_key("owner", scopes))


def scalar(sql: str, **params: Any) -> Any:
    with session_scope() as session:
        return session.execute(sa.text(sql), params).scalar_one()


def make_all_due() -> None:
    with session_scope() as session:
        session.execute(sa.text("UPDATE schedules SET next_run_at = now() - interval '1 minute'"))


def batch_body(n: int, prompt_chars: int = 20) -> dict[str, Any]:
    return {"requests": [{"kind": "image", "prompt": f"{i:04d} " + "x" * prompt_chars} for i in range(n)],
            "run_at": SOON}


@pytest.mark.parametrize(("body", "needed"), [
    ({"request": IMAGE, "run_at": SOON}, "generate"),
    ({"requests": [IMAGE] * 5, "run_at": SOON}, "batch"),
])
def test_a_schedule_only_key_cannot_schedule_what_it_may_not_run(body: dict[str, Any], needed: str) -> None:
    response = client_with("schedule").post("/v1/schedules", json=body)
    assert response.status_code == 403, response.get_json()
    error = response.get_json()["error"]
    assert error["details"][0]["reason"] == "INSUFFICIENT_SCOPE"
    assert error["details"][0]["metadata"]["required_scope"] == needed
    assert scalar("SELECT count(*) FROM schedules") == 0


def test_a_key_with_the_scope_of_what_it_runs_may_schedule_it() -> None:
    client = client_with("schedule", "generate")
    assert client.post("/v1/schedules", json={"request": IMAGE, "run_at": SOON}).status_code == 201
    assert client.post("/v1/schedules", json=batch_body(2)).status_code == 403


def test_a_run_over_the_owners_budget_is_recorded_with_a_reason_and_not_generated(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATE_LIMIT_BATCH_ITEMS", "8")
    config.get_settings.cache_clear()
    client = client_with("schedule", "batch")
    first = client.post("/v1/schedules", json=batch_body(5)).get_json()["id"]
    second = client.post("/v1/schedules", json=batch_body(5)).get_json()["id"]
    make_all_due()
    tick.tick(job_name=None, schedule_time=None)
    assert scalar("SELECT count(*) FROM jobs") == 5  # one run of 5 fits in 8, the second does not
    runs = {sid: client.get(f"/v1/schedules/{sid}").get_json()["runs"] for sid in (first, second)}
    assert all(len(r) == 1 for r in runs.values())
    generated = [r[0] for r in runs.values() if r[0]["batch_id"]]
    refused = [r[0] for r in runs.values() if not r[0]["batch_id"]]
    assert len(generated) == 1 and len(refused) == 1
    assert refused[0]["error"]["reason"] == "RATE_LIMITED"
    assert generated[0]["error"] is None


def test_a_cron_schedule_draws_its_items_from_the_budget_of_every_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATE_LIMIT_BATCH_ITEMS", "1000")
    config.get_settings.cache_clear()
    client = client_with("schedule", "batch")
    for _ in range(2):
        body = {**batch_body(1000, prompt_chars=1), "run_at": None, "cron": "* * * * *"}
        del body["run_at"]
        assert client.post("/v1/schedules", json=body).status_code == 201
    make_all_due()
    tick.tick(job_name=None, schedule_time=None)
    assert scalar("SELECT count(*) FROM jobs") == 1000  # the probe saw 2,000
    assert scalar("SELECT count(*) FROM schedule_runs WHERE error->>'reason' = 'RATE_LIMITED'") == 1


def test_an_owner_cannot_store_more_schedules_than_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDULE_MAX_PER_OWNER", "2")
    config.get_settings.cache_clear()
    client = client_with("schedule", "generate")
    other = client_with("schedule", "generate")
    for _ in range(2):
        assert client.post("/v1/schedules", json={"request": IMAGE, "run_at": SOON}).status_code == 201
    refused = client.post("/v1/schedules", json={"request": IMAGE, "run_at": SOON})
    assert refused.status_code == 400
    assert refused.get_json()["error"]["details"][0]["reason"] == "SCHEDULE_LIMIT_REACHED"
    assert other.post("/v1/schedules", json={"request": IMAGE, "run_at": SOON}).status_code == 201
    victim = client.get("/v1/schedules").get_json()["schedules"][0]["id"]
    assert client.delete(f"/v1/schedules/{victim}").status_code == 204
    assert client.post("/v1/schedules", json={"request": IMAGE, "run_at": SOON}).status_code == 201


def test_an_owner_cannot_store_more_bytes_of_schedules_than_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDULE_MAX_BYTES_PER_OWNER", str(200_000))
    config.get_settings.cache_clear()
    client = client_with("schedule", "batch")
    assert client.post("/v1/schedules", json=batch_body(100, prompt_chars=950)).status_code == 201
    refused = client.post("/v1/schedules", json=batch_body(100, prompt_chars=950))
    assert refused.status_code == 400
    error = refused.get_json()["error"]
    assert error["details"][0]["reason"] == "SCHEDULE_LIMIT_REACHED"
    assert "bytes" in error["message"]


def test_a_list_of_twelve_1mb_schedules_stays_under_1mb(monkeypatch: pytest.MonkeyPatch) -> None:
    client = client_with("schedule", "batch")
    for _ in range(12):
        response = client.post("/v1/schedules", json=batch_body(1000, prompt_chars=950))
        assert response.status_code == 201, response.get_json()
    assert scalar("SELECT sum(stored_bytes) FROM schedules") > 11_000_000
    listed = client.get("/v1/schedules?page_size=200")
    assert listed.status_code == 200
    assert len(listed.data) < 1_000_000  # the probe measured 12.4 MB here
    schedules = listed.get_json()["schedules"]
    assert len(schedules) == 12
    assert all(s["item_count"] == 1000 and "requests" not in s for s in schedules)
    one = client.get(f"/v1/schedules/{schedules[0]['id']}").get_json()
    assert len(one["requests"]) == 1000 and one["item_count"] == 1000


def test_a_page_is_bounded_in_bytes_as_well_as_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDULE_LIST_MAX_BYTES", "2048")
    config.get_settings.cache_clear()
    client = client_with("schedule", "generate")
    for i in range(10):
        client.post("/v1/schedules", json={"request": {**IMAGE, "prompt": f"p{i}"}, "run_at": SOON})
    seen: list[str] = []
    token = None
    while True:
        query = {"page_size": 200, **({"page_token": token} if token else {})}
        response = client.get("/v1/schedules", query_string=query)
        page = response.get_json()
        assert len(response.data) < 2048 + 1024  # the limit, plus the one schedule that crossed it
        seen += [s["id"] for s in page["schedules"]]
        token = page.get("next_page_token")
        if not token:
            break
    assert len(seen) == len(set(seen)) == 10


def test_the_tick_claims_chunks_bounded_by_items_not_schedules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATE_LIMIT_BATCH_ITEMS", "0")
    config.get_settings.cache_clear()
    client = client_with("schedule", "batch")
    for _ in range(3):
        assert client.post("/v1/schedules", json=batch_body(1000, prompt_chars=1)).status_code == 201
    make_all_due()
    claim = tick.claim_due_schedules(200, "batches", max_items=1500)
    assert (claim.claimed, claim.fired, claim.more) == (1, 1, True)
    assert scalar("SELECT count(*) FROM jobs") == 1000
    assert tick.tick(job_name=None, schedule_time=None).fired == 2
    assert scalar("SELECT count(*) FROM jobs") == 3000


def test_one_broken_schedule_does_not_block_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    client = client_with("schedule", "generate")
    ids = [client.post("/v1/schedules", json={"request": {**IMAGE, "prompt": f"p{i}"}, "cron": "0 9 * * *"}
                       ).get_json()["id"] for i in range(5)]
    make_all_due()
    with session_scope() as session:  # as a later version, or a bad restore, might leave them
        session.execute(sa.text("UPDATE schedules SET requests = CAST(:r AS jsonb) WHERE id = :id"),
                        {"r": json.dumps([{"kind": "sound", "prompt": "x"}]), "id": ids[1]})
        session.execute(sa.text("UPDATE schedules SET cron = 'not a cron' WHERE id = :id"), {"id": ids[3]})
    result = tick.tick(job_name=None, schedule_time=None)
    assert result.fired == 3
    reasons = dict(sa_rows("SELECT schedule_id, error->>'reason' FROM schedule_runs"))
    assert reasons == {ids[0]: None, ids[1]: "INVALID_REQUEST", ids[2]: None, ids[3]: "RUN_FAILED", ids[4]: None}
    assert tick.tick(job_name=None, schedule_time=None).fired == 0  # nothing stays stuck as due


def sa_rows(sql: str) -> list[tuple[Any, ...]]:
    with session_scope() as session:
        return [tuple(row) for row in session.execute(sa.text(sql))]
