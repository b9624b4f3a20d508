"""`GET /v1/schedules`: the caller's schedules only, newest first, a page at a time, with recent runs."""

from __future__ import annotations

import base64
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


@pytest.fixture
def client(db: Any, api_key: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("PUBSUB_BATCH_TOPIC", "batches")
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")
    monkeypatch.setenv("PUBSUB_PUBLISH_TIMEOUT_SECONDS", "0.2")
    config.get_settings.cache_clear()
    return make_client("scheduling", key=api_key)


def create(client: Any, n: int) -> list[str]:
    ids = []
    for i in range(n):
        response = client.post("/v1/schedules", json={"request": {**IMAGE, "prompt": f"scene {i}"},
                                                      "cron": f"{i % 60} 9 * * *"})
        assert response.status_code == 201, response.get_json()
        ids.append(response.get_json()["id"])
    return ids


def test_pages_walk_every_schedule_newest_first_exactly_once(client: Any) -> None:
    ids = create(client, 7)
    seen, token, pages = [], None, 0
    while True:
        query = {"page_size": 3, **({"page_token": token} if token else {})}
        page = client.get("/v1/schedules", query_string=query).get_json()
        seen += [s["id"] for s in page["schedules"]]
        pages += 1
        token = page["next_page_token"]
        if token is None:
            break
    assert seen == list(reversed(ids)) and pages == 3


def test_another_keys_schedules_are_not_listed(client: Any) -> None:
    create(client, 2)
    stranger = make_client("scheduling", key=mint_key("stranger"))

    assert stranger.get("/v1/schedules").get_json() == {"schedules": [], "next_page_token": None}


def test_listed_schedules_show_their_recent_runs(client: Any) -> None:
    (schedule_id,) = create(client, 1)
    due = datetime.now(UTC) - timedelta(minutes=1)
    with session_scope() as session:
        session.execute(sa.text("UPDATE schedules SET next_run_at = :at WHERE id = :id"),
                        {"at": due, "id": schedule_id})
    tick.claim_due_schedules(10, "projects/genmedia-test/topics/batches")

    (listed,) = client.get("/v1/schedules").get_json()["schedules"]
    shown = client.get(f"/v1/schedules/{schedule_id}").get_json()
    # A list leaves the requests out (only the schedule's own GET shows them) and counts them.
    assert listed == {k: v for k, v in shown.items() if k not in ("request", "requests")}
    assert listed["item_count"] == 1
    assert len(listed["runs"]) == 1 and listed["last_run_at"] is not None


# A well-formed token whose id holds U+0000: refused, not sent to PostgreSQL (which cannot hold it).
NUL_TOKEN = base64.urlsafe_b64encode(json.dumps(["2020-01-01T00:00:00+00:00", "a\x00"]).encode()).decode()


@pytest.mark.parametrize("query", [{"page_size": "0"}, {"page_size": "201"}, {"page_size": "many"},
                                   {"page_token": "not-a-token"}, {"page_token": NUL_TOKEN}, {"pagesize": "3"}])
def test_a_bad_query_is_a_400_naming_the_parameter(client: Any, query: dict[str, str]) -> None:
    response = client.get("/v1/schedules", query_string=query)

    assert response.status_code == 400
    field = response.get_json()["error"]["details"][1]["fieldViolations"][0]["field"]
    assert field == next(iter(query))
