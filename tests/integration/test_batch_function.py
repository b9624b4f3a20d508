"""The batch function in process (functions-framework test client) on a real PostgreSQL: every delivery
shape it meets, and the status codes that make Pub/Sub ack (2xx) or redeliver (non-2xx)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from shared import config
from shared.batches import NewBatch, create_batches
from shared.database import session_scope
from shared.jobs import claim_item
from shared.logging import capture_logs
from shared.media.backends import reset_backends
from shared.media.capabilities import resolve
from shared.media.request import GenerationRequest
from shared.tables import JobRow
from tests.servers import make_client

EVENTS = Path(__file__).resolve().parent.parent / "events"
SAMPLE_BATCH = "bat_sample"  # the batch every sample in tests/events points at
SAMPLE_PROMPTS = [
    "a lighthouse at dawn", "a red fox in fresh snow", "a paper boat on a puddle", "a kite over a dune",
]


def load(name: str) -> dict[str, Any]:
    """One sample delivery from tests/events."""
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


def push_body(data: bytes | None, message_id: str = "9001", **message: Any) -> dict[str, Any]:
    """A raw push body (the emulator's shape) around `data`."""
    body = load("pubsub_push.json")
    body["message"].update(messageId=message_id, message_id=message_id, **message)
    if data is None:
        del body["message"]["data"]
    else:
        body["message"]["data"] = base64.b64encode(data).decode()
    return body


def item_data(index: int, batch_id: str = SAMPLE_BATCH) -> bytes:
    """The data the outbox publishes for item `index`."""
    return json.dumps({"batch_id": batch_id, "item_id": f"{batch_id}_{index:04d}",
                       "request": {"kind": "image", "prompt": SAMPLE_PROMPTS[index % 4]}}).encode()


@pytest.fixture
def local_env(db: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Local backend writing under tmp; returns the media folder."""
    monkeypatch.setenv("GENERATION_BACKEND", "local")
    monkeypatch.setenv("LOCAL_DATA_DIR", str(tmp_path / "media"))
    monkeypatch.setenv("PUBSUB_BATCH_TOPIC", "genmedia-batch")
    return tmp_path / "media"


@pytest.fixture(autouse=True)
def _fresh_backends() -> Iterator[None]:
    reset_backends()
    yield
    reset_backends()


def make_batch(prompts: list[str], batch_id: str = SAMPLE_BATCH, owner_id: str = "",
               kind: str = "image") -> None:
    """Record a batch and its queued items (its outbox rows stay pending: nothing is published)."""
    requests = [resolve(GenerationRequest(kind=kind, prompt=p)) for p in prompts]  # type: ignore[arg-type]
    with session_scope() as session:
        create_batches(session, [NewBatch(id=batch_id, owner_id=owner_id, requests=requests)],
                       topic="genmedia-batch")


def stored(item_id: str) -> dict[str, Any]:
    """The item's row: status, attempts, outputs, error, updated_at."""
    with session_scope() as session:
        row = session.get(JobRow, item_id)
        assert row is not None
        return {"status": row.status, "attempts": row.attempts, "outputs": list(row.outputs),
                "error": row.error, "updated_at": row.updated_at}


@pytest.fixture
def batch(local_env: Path) -> Any:
    """The batch function's test client, with the sample batch recorded."""
    make_batch(SAMPLE_PROMPTS)
    return make_client("batch")


def post_structured(client: Any, event: dict[str, Any]) -> Any:
    return client.post("/", data=json.dumps(event), headers={"Content-Type": "application/cloudevents+json"})


def test_structured_cloudevent_sample_processes_its_item(batch: Any) -> None:
    """Eventarc structured mode: 200, the item succeeded with one output."""
    response = post_structured(batch, load("pubsub_cloudevent_structured.json"))
    assert response.status_code == 200
    item = stored(f"{SAMPLE_BATCH}_0000")
    assert (item["status"], item["attempts"], len(item["outputs"])) == ("succeeded", 1, 1)


def test_binary_cloudevent_sample_processes_its_item(batch: Any) -> None:
    """Eventarc binary mode (ce-* headers): 200, the item succeeded."""
    sample = load("pubsub_cloudevent_binary.json")
    response = batch.post("/", data=json.dumps(sample["body"]), headers=sample["headers"])
    assert response.status_code == 200
    assert stored(f"{SAMPLE_BATCH}_0001")["status"] == "succeeded"


def test_raw_push_sample_processes_its_item(batch: Any) -> None:
    """A direct push subscription's body (what the emulator sends): 200, the item succeeded."""
    response = batch.post("/", json=load("pubsub_push.json"))
    assert response.status_code == 200
    assert stored(f"{SAMPLE_BATCH}_0002")["status"] == "succeeded"


def test_push_sample_with_delivery_attempt_processes_its_item(batch: Any) -> None:
    """A push body with `deliveryAttempt` (dead-letter policy on): 200, the item succeeded."""
    response = batch.post("/", json=load("pubsub_push_delivery_attempt.json"))
    assert response.status_code == 200
    assert stored(f"{SAMPLE_BATCH}_0003")["status"] == "succeeded"


def test_generation_api_shows_the_processed_item(batch: Any, api_key: str) -> None:
    """What its owner sees after the delivery: the job and the batch counts through the generation API."""
    make_batch(["a lantern in the fog", "a tide pool"], batch_id="bat_owned", owner_id=api_key.split("_")[1])
    assert batch.post("/", json=push_body(item_data(0, "bat_owned"), message_id="4100")).status_code == 200
    generation = make_client("generation")
    auth = {"Authorization": f"Bearer {api_key}"}
    job = generation.get("/v1/generations/bat_owned_0000", headers=auth).get_json()
    assert (job["status"], job["batch_id"], len(job["outputs"])) == ("succeeded", "bat_owned", 1)
    counts = generation.get("/v1/batches/bat_owned", headers=auth).get_json()["counts"]
    assert counts == {"queued": 1, "running": 0, "succeeded": 1, "failed": 0, "cancelled": 0}


@pytest.mark.parametrize(
    "body",
    [b'{"message": {"data": "c2VjcmV0LXBheWxvYWQ=", "messageId": "1"', b"\xff\xfe{", b"null",
     b'{"message": "c2VjcmV0LXBheWxvYWQ="}', b'["c2VjcmV0LXBheWxvYWQ="]', b'"c2VjcmV0LXBheWxvYWQ="'],
    ids=["truncated JSON", "not UTF-8", "null", "message not an object", "JSON array", "JSON string"],
)
def test_undeliverable_body_is_acked_with_204_and_logged_without_its_data(batch: Any, body: bytes) -> None:
    """A body functions-framework cannot read: 204 (ack, never a loop), one ERROR line, no raw data."""
    with capture_logs() as logs:
        response = batch.post("/", data=body, content_type="application/json")
    assert response.status_code == 204
    assert [line["severity"] for line in logs if line["severity"] == "ERROR"] == ["ERROR"]
    assert "c2VjcmV0" not in json.dumps(logs)


@pytest.mark.parametrize(
    ("data", "extra", "logged_id"),
    [
        (None, {"data": "not base64!"}, "4242"),
        (b"{this is not json", {}, "4242"),
        (b"\xff\xfe\xfd", {}, "4242"),
        (b'{"batch_id": "bat_sample"}', {}, "4242"),
        (b'{"batch_id": "bat_sample", "item_id": ""}', {}, "4242"),
        (b"[1, 2, 3]", {}, "4242"),
        # functions-framework refuses a push body without `data` before our code sees its id
        (None, {}, None),
    ],
    ids=["data not base64", "data not JSON", "data not UTF-8", "item_id missing", "item_id empty",
         "data a JSON array", "no data"],
)
def test_unreadable_message_is_acked_and_logged_by_id(
    batch: Any, data: bytes | None, extra: dict[str, Any], logged_id: str | None,
) -> None:
    """Data we cannot use: 2xx (ack), one ERROR line carrying the message id, never the data."""
    body = push_body(data, message_id="4242")
    body["message"].update(extra)
    with capture_logs() as logs:
        response = batch.post("/", json=body)
    assert 200 <= response.status_code < 300
    assert [line.get("request_id") for line in logs if line["severity"] == "ERROR"] == [logged_id]
    assert "this is not json" not in json.dumps(logs)


def test_message_for_nonexistent_item_is_acked(batch: Any) -> None:
    """An item id that was never recorded: acked (a retry cannot create it), logged at ERROR by id."""
    data = json.dumps({"batch_id": "bat_gone", "item_id": "bat_gone_0000", "request": {}}).encode()
    with capture_logs() as logs:
        response = batch.post("/", json=push_body(data, message_id="4343"))
    assert response.status_code == 200
    assert [line["request_id"] for line in logs if line["severity"] == "ERROR"] == ["4343"]


def test_duplicate_delivery_has_no_second_effect(batch: Any, local_env: Path) -> None:
    """The same message again, and the same item under another message id: 200, nothing changes."""
    assert batch.post("/", json=load("pubsub_push.json")).status_code == 200
    item_id = f"{SAMPLE_BATCH}_0002"
    first = stored(item_id)
    with capture_logs() as logs:
        assert batch.post("/", json=load("pubsub_push.json")).status_code == 200
        assert batch.post("/", json=push_body(item_data(2), message_id="777")).status_code == 200
    assert stored(item_id) == first
    assert first["attempts"] == 1
    assert [f.name for f in (local_env / "images" / item_id).iterdir()] == ["0.png"]
    assert [line["message"] for line in logs if line.get("item_id") == item_id] == [
        "duplicate delivery acknowledged"] * 2


def test_delivery_while_another_holds_the_item_is_acked_without_touching_it(batch: Any) -> None:
    """Another delivery holds the item's lease: ack (no Pub/Sub attempt spent), item and attempts untouched;
    if the holder died, the tick requeues the item once the lease ends."""
    item_id = f"{SAMPLE_BATCH}_0002"
    with session_scope() as session:
        assert claim_item(session, item_id, lease_seconds=60) == ("claimed", 1)
    response = batch.post("/", json=load("pubsub_push.json"))
    assert response.status_code == 200
    assert (stored(item_id)["status"], stored(item_id)["attempts"]) == ("running", 1)


def test_video_item_is_acked_running_with_its_operation_started_once(batch: Any) -> None:
    """A video item: 200 at once with the item running on a stored operation; a duplicate starts nothing."""
    make_batch(["a wave breaking"], batch_id="bat_video", kind="video")
    data = json.dumps({"batch_id": "bat_video", "item_id": "bat_video_0000",
                       "request": {"kind": "video", "prompt": "a wave breaking"}}).encode()
    assert batch.post("/", json=push_body(data, message_id="7001")).status_code == 200
    with session_scope() as session:
        first = session.get(JobRow, "bat_video_0000")
        assert first is not None
        started = (first.status, first.operation_name, first.attempts)
    assert started[0] == "running" and started[1]
    assert batch.post("/", json=push_body(data, message_id="7002")).status_code == 200
    with session_scope() as session:
        again = session.get(JobRow, "bat_video_0000")
        assert again is not None
        assert (again.status, again.operation_name, again.attempts) == started


@pytest.fixture
def vertex_batch(db: Any, vertex_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The batch function against the Vertex AI and Cloud Storage stand-ins, two delivery attempts."""
    monkeypatch.setenv("MAX_DELIVERY_ATTEMPTS", "2")
    monkeypatch.setenv("VERTEX_DEADLINE_SECONDS", "0.5")
    monkeypatch.setenv("PUBSUB_BATCH_TOPIC", "genmedia-batch")
    return make_client("batch")


def test_transient_failure_is_redelivered_until_max_attempts_then_acked_as_failed(vertex_batch: Any) -> None:
    """Vertex AI always 503: the first delivery answers non-2xx, the second (the last) acks a failed item."""
    make_batch(["[standin:unavailable] a storm"], batch_id="bat_flaky")
    body = push_body(item_data(0, "bat_flaky"), message_id="5001")
    assert vertex_batch.post("/", json=body).status_code == 503
    assert stored("bat_flaky_0000")["status"] == "running"
    second = vertex_batch.post("/", json=body)
    assert second.status_code == 200
    item = stored("bat_flaky_0000")
    assert (item["status"], item["attempts"]) == ("failed", 2)
    assert item["error"]["reason"] == "UPSTREAM_UNAVAILABLE"
    assert vertex_batch.post("/", json=body).status_code == 200  # a late redelivery changes nothing
    assert stored("bat_flaky_0000") == item


def test_transient_failure_then_success_generates_once(vertex_batch: Any, vertex_standin: Any) -> None:
    """Vertex AI down for the first delivery, back for the redelivery: 503, then 200 and one output."""
    make_batch(["a passing shower"], batch_id="bat_retry")
    body = push_body(item_data(0, "bat_retry"), message_id="5002")
    vertex_standin.queue("unavailable", times=1000)
    assert vertex_batch.post("/", json=body).status_code == 503
    vertex_standin.reset()  # Vertex AI is back
    assert vertex_batch.post("/", json=body).status_code == 200
    item = stored("bat_retry_0000")
    assert (item["status"], item["attempts"], len(item["outputs"])) == ("succeeded", 2, 1)
    assert len(vertex_standin.calls()) == 1


def test_a_vertex_quota_refusal_sends_the_item_back_to_the_queue_without_spending_an_attempt(
    vertex_batch: Any, vertex_standin: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Vertex AI answers 429 below the configured quota: acked (never nacked into Pub/Sub's backoff), not
    retried into the quota, the item queued again for a later slot with its attempt refunded, the
    budget cut; the redelivery of its new turn succeeds."""
    model = str(resolve(GenerationRequest(kind="image", prompt="x")).model)
    monkeypatch.setenv("VERTEX_QUOTAS", f"{model}=600/60")
    config.get_settings.cache_clear()
    make_batch(["a crowded sky"], batch_id="bat_quota")
    body = push_body(item_data(0, "bat_quota"), message_id="5004")
    vertex_standin.queue("quota", times=1000)
    assert vertex_batch.post("/", json=body).status_code == 200
    assert len(vertex_standin.calls()) == 1
    item = stored("bat_quota_0000")
    assert (item["status"], item["attempts"], item["error"]) == ("queued", 0, None)
    with session_scope() as session:
        budget = session.execute(sa.text("SELECT limit_calls, deferred, tat, extract(epoch FROM now())::float8"
                                         " AS now FROM quota_budgets WHERE model = :m"), {"m": model}).one()
    assert budget.limit_calls == pytest.approx(420.0) and budget.deferred == 1  # cut by AIMD
    vertex_standin.reset()
    assert vertex_batch.post("/", json=body).status_code == 200
    item = stored("bat_quota_0000")
    assert (item["status"], item["attempts"], len(item["outputs"])) == ("succeeded", 1, 1)


def test_permanent_failure_is_acked_and_recorded(vertex_batch: Any) -> None:
    """A content-filtered prompt: 200 on the first delivery, the item failed with its reason."""
    make_batch(["[standin:rai-filtered] something filtered"], batch_id="bat_filtered")
    response = vertex_batch.post("/", json=push_body(item_data(0, "bat_filtered"), message_id="5003"))
    assert response.status_code == 200
    item = stored("bat_filtered_0000")
    assert (item["status"], item["attempts"], item["error"]["reason"]) == ("failed", 1, "CONTENT_FILTERED")


def test_unexpected_error_is_redelivered_then_fails_the_item_at_max_attempts(
    batch: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stored request this code cannot read (schema drift): 503, then failed at the limit, never stuck."""
    monkeypatch.setenv("MAX_DELIVERY_ATTEMPTS", "2")
    config.get_settings.cache_clear()
    make_batch(["a drifting boat"], batch_id="bat_drift")
    with session_scope() as session:
        row = session.get(JobRow, "bat_drift_0000")
        assert row is not None
        row.request = {**row.request, "style": "noir"}  # a field another version wrote
    body = push_body(item_data(0, "bat_drift"), message_id="6001")
    assert batch.post("/", json=body).status_code == 503
    assert stored("bat_drift_0000")["status"] == "running"
    # The redelivery (the last allowed attempt) must end the item, not find it still leased by the first.
    assert batch.post("/", json=body).status_code == 200
    item = stored("bat_drift_0000")
    assert (item["status"], item["attempts"]) == ("failed", 2)
    assert item["error"] is not None


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_a_deeply_nested_message_is_acked_with_one_error_line(batch: Any, depth: int) -> None:
    """Data nested past the parser's recursion limit: acked (a redelivery cannot parse it either)."""
    data = b'{"batch_id": "bat_sample", "item_id": "bat_sample_0000", "request": ' + b"[" * depth + b"]" * depth + b"}"
    with capture_logs() as logs:
        response = batch.post("/", json=push_body(data, message_id="4545"))
    assert 200 <= response.status_code < 300  # the probe saw 503, redelivered until dead-lettered
    assert [line["request_id"] for line in logs if line["severity"] == "ERROR"] == ["4545"]
    assert stored("bat_sample_0000")["status"] == "queued"


def test_a_message_naming_a_job_outside_its_batch_does_not_run_it(batch: Any) -> None:
    """A running job named with another batch's id: not claimed, not re-run (a second billed call)."""
    make_batch(["another"], batch_id="bat_other")
    with session_scope() as session:
        session.execute(sa.text("UPDATE jobs SET status = 'running', lease_until = now() - interval '1 s' "
                                "WHERE id = 'bat_other_0000'"))
    data = json.dumps({"batch_id": SAMPLE_BATCH, "item_id": "bat_other_0000", "request": {}}).encode()
    with capture_logs() as logs:
        response = batch.post("/", json=push_body(data, message_id="4646"))
    assert response.status_code == 200
    assert [line["request_id"] for line in logs if line["severity"] == "ERROR"] == ["4646"]
    after = stored("bat_other_0000")
    assert (after["status"], after["attempts"], after["outputs"]) == ("running", 0, [])
