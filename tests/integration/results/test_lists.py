"""custom_id on batch items, and the caller's generations and batches listed newest first with opaque,
tamper-proof keyset page tokens bound to the caller and the filter; the plans use the indexes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from shared import config
from shared.results.lists import GenerationListQuery, jobs_statement
from tests.conftest import mint_key
from tests.servers import make_client

BATCH_ENV = {"PUBSUB_BATCH_TOPIC": "batches", "PUBSUB_EMULATOR_HOST": "127.0.0.1:9",
             "PUBSUB_PUBLISH_TIMEOUT_SECONDS": "0.2"}


@pytest.fixture
def client(db: Any, api_key: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in BATCH_ENV.items():
        monkeypatch.setenv(name, value)
    config.get_settings.cache_clear()
    return make_client("generation", key=api_key)


def _batch(client: Any, n: int, custom: bool = True) -> dict[str, Any]:
    items = [{"kind": "image", "prompt": f"p{i}", **({"custom_id": f"row-{i}"} if custom else {})} for i in range(n)]
    response = client.post("/v1/batches", json={"items": items})
    assert response.status_code == 202, response.get_json()
    return dict(response.get_json())


def _field(response: Any) -> str:
    return str(response.get_json()["error"]["details"][0]["metadata"]["field"])


def _all_pages(client: Any, query: str, page_size: int) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    token = ""
    while True:
        page = client.get(f"/v1/generations?{query}&page_size={page_size}&page_token={token}").get_json()
        seen += page["generations"]
        assert len(page["generations"]) <= page_size
        token = page.get("next_page_token") or ""
        if not token:
            return seen


def test_every_job_shows_its_custom_id_batch_and_schedule(client: Any) -> None:
    batch = _batch(client, 3)
    jobs = client.get(f"/v1/generations?batch_id={batch['id']}").get_json()["generations"]
    assert sorted(j["custom_id"] for j in jobs) == ["row-0", "row-1", "row-2"]
    assert {j["batch_id"] for j in jobs} == {batch["id"]} and {j["schedule_id"] for j in jobs} == {None}
    alone = client.post("/v1/generations", json={"kind": "image", "prompt": "alone"}).get_json()
    assert alone["custom_id"] is None and alone["batch_id"] is None and alone["schedule_id"] is None


@pytest.mark.parametrize(("items", "field"), [
    ([{"kind": "image", "prompt": "a", "custom_id": "x"}, {"kind": "image", "prompt": "b"},
      {"kind": "image", "prompt": "c", "custom_id": "x"}], "items[2].custom_id"),
    ([{"kind": "image", "prompt": "a", "custom_id": "has space"}], "items[0].custom_id"),
    ([{"kind": "image", "prompt": "a", "custom_id": "x" * 65}], "items[0].custom_id"),
    ([{"kind": "image", "prompt": "a", "custom_id": ""}], "items[0].custom_id"),
    ([{"kind": "image", "prompt": "a", "custom_id": 7}], "items[0].custom_id"),
])
def test_a_bad_or_repeated_custom_id_is_a_400_naming_the_item(client: Any, items: list[Any], field: str) -> None:
    response = client.post("/v1/batches", json={"items": items})
    assert response.status_code == 400 and _field(response) == field


def test_pages_walk_every_job_once_newest_first(client: Any) -> None:
    first, second = _batch(client, 9), _batch(client, 8, custom=False)
    seen = _all_pages(client, "", 4)
    assert len(seen) == 17 and len({j["id"] for j in seen}) == 17
    keys = [(j["created_at"], j["id"]) for j in seen]
    assert keys == sorted(keys, reverse=True)
    assert {j["batch_id"] for j in seen[:8]} == {second["id"]}  # newest first
    assert [j["id"] for j in _all_pages(client, f"batch_id={first['id']}", 100)] == \
        [f"{first['id']}_{i:04d}" for i in reversed(range(9))]


def test_only_the_callers_jobs_and_batches_are_listed(client: Any) -> None:
    _batch(client, 2)
    other = make_client("generation", key=mint_key("someone-else"))
    assert other.get("/v1/generations").get_json() == {"generations": [], "next_page_token": None}
    assert other.get("/v1/batches").get_json()["batches"] == []


def test_status_filter_and_batch_listing(client: Any) -> None:
    batch = _batch(client, 2)
    client.post("/v1/generations", json={"kind": "image", "prompt": "done"})
    assert {j["status"] for j in client.get("/v1/generations?status=queued").get_json()["generations"]} == {"queued"}
    assert len(client.get("/v1/generations?status=succeeded").get_json()["generations"]) == 1
    batches = client.get("/v1/batches?page_size=1").get_json()
    assert batches["batches"][0]["id"] == batch["id"] and batches["batches"][0]["counts"]["queued"] == 2
    assert batches["next_page_token"] is None


def test_a_page_token_is_bound_to_its_caller_and_filter(client: Any) -> None:
    batch = _batch(client, 5)
    token = client.get(f"/v1/generations?batch_id={batch['id']}&page_size=2").get_json()["next_page_token"]
    assert token
    other = make_client("generation", key=mint_key("someone-else"))
    payload, _, signature = token.partition(".")
    for response in (
        other.get(f"/v1/generations?batch_id={batch['id']}&page_token={token}"),
        client.get(f"/v1/generations?page_token={token}"),
        client.get(f"/v1/generations?batch_id={batch['id']}&status=queued&page_token={token}"),
        client.get(f"/v1/generations?batch_id={batch['id']}&page_token={payload[:-1]}A.{signature}"),
        client.get(f"/v1/generations?batch_id={batch['id']}&page_token={payload}.{signature[:-1]}"),
        client.get(f"/v1/generations?batch_id={batch['id']}&page_token=garbage"),
        client.get(f"/v1/batches?page_token={token}"),
    ):
        assert response.status_code == 400, response.get_json()
        assert _field(response) == "page_token"
    # The page size may change between pages; the token still holds.
    assert client.get(f"/v1/generations?batch_id={batch['id']}&page_token={token}&page_size=3").status_code == 200


@pytest.mark.parametrize(("query", "field"), [
    ("page_size=0", "page_size"), ("page_size=101", "page_size"), ("page_size=-1", "page_size"),
    ("page_size=abc", "page_size"), ("status=done", "status"), ("colour=red", "colour"),
    ("batch_id=a%20b", "batch_id"),
])
def test_bad_list_parameters_are_a_400_naming_them(client: Any, query: str, field: str) -> None:
    response = client.get(f"/v1/generations?{query}")
    assert response.status_code == 400 and _field(response) == field


def test_a_scheduled_batch_shows_its_schedule_and_lists_by_it(client: Any, api_key: str) -> None:
    from functions.scheduling.tick import claim_due_schedules

    scheduling = make_client("scheduling", key=api_key)
    run_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    schedule = scheduling.post("/v1/schedules", json={"requests": [
        {"kind": "image", "prompt": "a", "custom_id": "cover"}, {"kind": "image", "prompt": "b"}], "run_at": run_at})
    assert schedule.status_code == 201, schedule.get_json()
    assert schedule.get_json()["requests"][0]["custom_id"] == "cover"
    claim_due_schedules(10, "batches", now=datetime.now(UTC) + timedelta(hours=2))
    jobs = client.get(f"/v1/generations?schedule_id={schedule.get_json()['id']}").get_json()["generations"]
    assert sorted((j["custom_id"] or "") for j in jobs) == ["", "cover"]
    assert {j["schedule_id"] for j in jobs} == {schedule.get_json()["id"]}


def test_a_repeated_custom_id_in_a_schedule_is_a_400_naming_it(client: Any, api_key: str) -> None:
    response = make_client("scheduling", key=api_key).post("/v1/schedules", json={"requests": [
        {"kind": "image", "prompt": "a", "custom_id": "x"}, {"kind": "image", "prompt": "b", "custom_id": "x"}],
        "run_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()})
    assert response.status_code == 400 and _field(response) == "requests[1].custom_id"


def _plan(db: Any, statement: Any) -> str:
    engine = sa.create_engine(db.url)
    compiled = statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        conn.execute(sa.text("ANALYZE jobs; ANALYZE batches"))
        plan = conn.execute(sa.text(f"EXPLAIN (FORMAT JSON) {compiled}")).scalar_one()
    engine.dispose()
    return json.dumps(plan)


def _fill(db: Any) -> None:
    """8,000 batches of 4 owners, 40 of them with 1,000 jobs: enough rows that a scan would be the planner's loss."""
    engine = sa.create_engine(db.url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO batches (id, owner_id, total, schedule_id, created_at) SELECT 'bat_' || b, 'owner' || (b % 4),"
            " 1000, 'sch_' || (b % 20), now() - b * interval '1 minute' FROM generate_series(1, 8000) b"))
        conn.execute(sa.text(
            "INSERT INTO jobs (id, owner_id, kind, model, status, request, batch_id, item_index, schedule_id,"
            " created_at) SELECT 'bat_' || b || '_' || i, 'owner' || (b % 4), 'image', 'm',"
            " (ARRAY['queued','running','succeeded','failed','cancelled'])[1 + i % 5], '{}', 'bat_' || b, i,"
            " 'sch_' || (b % 20), now() - b * interval '1 minute' FROM generate_series(1, 40) b,"
            " generate_series(0, 999) i"))
    engine.dispose()


@pytest.mark.parametrize(("filters", "index"), [
    ({}, "jobs_owner_recent"), ({"batch_id": "bat_8"}, "jobs_batch_recent"),
    ({"schedule_id": "sch_4"}, "jobs_schedule_recent"), ({"status": "failed"}, "jobs_owner_status_recent"),
])
def test_job_lists_walk_an_index_in_order_never_a_scan_or_a_sort(db: Any, filters: dict[str, str], index: str
                                                                  ) -> None:
    _fill(db)
    query = GenerationListQuery(**filters)
    statement = jobs_statement(query, "owner0").order_by(sa.text("created_at DESC, id DESC")).limit(21)
    plan = _plan(db, statement)
    assert index in plan and "Seq Scan" not in plan and '"Sort"' not in plan, plan


def test_the_batch_list_walks_its_index(db: Any) -> None:
    from shared.tables import BatchRow

    _fill(db)
    statement = (sa.select(BatchRow).where(BatchRow.owner_id == "owner1")
                 .order_by(BatchRow.created_at.desc(), BatchRow.id.desc()).limit(21))
    plan = _plan(db, statement)
    assert "batches_owner_recent" in plan and "Seq Scan" not in plan and '"Sort"' not in plan, plan
