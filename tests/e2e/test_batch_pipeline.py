"""Batches end to end: generation -> outbox -> Pub/Sub emulator -> push -> batch function -> PostgreSQL."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from tests.e2e.conftest import PROJECT, Pipeline, item_payload, skip_module_without_emulator, wait_until
from tests.standin.gcs_server import GcsStandIn
from tests.standin.vertex_server import VertexStandIn

skip_module_without_emulator()
pytestmark = pytest.mark.e2e
T = TypeVar("T")

# The emulator redelivers a nacked push after ~1 s: this long without a new delivery means it was acked.
QUIET_SECONDS = 2.5


@dataclass
class StandIns:
    """The Vertex AI and Cloud Storage stand-ins (in this process), called over HTTP by the batch function."""

    vertex: VertexStandIn
    gcs: GcsStandIn

    def env(self, **extra: str) -> dict[str, str]:
        """Batch function env that sends generations to the stand-ins."""
        return {"GENERATION_BACKEND": "vertex", "VERTEX_BASE_URL": self.vertex.url,
                "VERTEX_TOKEN": "standin-token", "OUTPUT_BUCKET": "genmedia-e2e-out",
                "STORAGE_EMULATOR_HOST": self.gcs.url,
                "GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/genmedia-e2e-credentials.json", **extra}

    def calls_for(self, prompt: str) -> int:
        """How many Vertex AI calls carried `prompt` (whatever the model's method)."""
        return sum(1 for call in self.vertex.calls() if prompt in json.dumps(call.body))


@pytest.fixture
def standins(vertex_standin: VertexStandIn, gcs_standin: GcsStandIn) -> StandIns:
    """Both stand-ins, reset; the `slow` scenario answers after 2 s."""
    vertex_standin.slow_seconds = 2.0
    return StandIns(vertex_standin, gcs_standin)


def job_rows(url: str, batch_id: str) -> dict[str, dict[str, Any]]:
    """Each item's stored row (status, attempts, outputs, updated_at), straight from PostgreSQL."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT id, status, attempts, outputs, error, updated_at FROM jobs WHERE batch_id = :b"
            ), {"b": batch_id}).mappings().all()
    finally:
        engine.dispose()
    return {row["id"]: dict(row) for row in rows}


def after_quiet_period(measure: Callable[[], T]) -> T:
    """`measure()` once the emulator has had QUIET_SECONDS to redeliver anything it did not get acked."""
    time.sleep(QUIET_SECONDS)
    return measure()


def test_hundred_image_batch_completes(make_pipeline: Callable[..., Pipeline]) -> None:
    """Every item of a 100-image batch ends succeeded, each with one output, nothing dead-lettered."""
    pipeline = make_pipeline()
    batch = pipeline.submit([{"kind": "image", "prompt": f"a lighthouse, variant {i}"} for i in range(100)])
    assert (batch["total"], batch["status"]) == (100, "queued")
    done = pipeline.wait_finished(batch["id"], timeout=40)
    assert done["status"] == "succeeded"
    assert done["counts"] == {"queued": 0, "running": 0, "succeeded": 100, "failed": 0, "cancelled": 0}
    rows = job_rows(pipeline.batch.env["DATABASE_URL"], batch["id"])
    assert len(rows) == 100
    assert all(len(row["outputs"]) == 1 and row["attempts"] == 1 for row in rows.values())
    assert pipeline.emulator.pull(pipeline.dead_letters) == []


def test_redelivered_message_has_no_second_effect(
    make_pipeline: Callable[..., Pipeline], tmp_path: Path,
) -> None:
    """The same item published twice more after it finished: both acked, nothing changes."""
    pipeline = make_pipeline()
    request = {"kind": "image", "prompt": "a paper boat"}
    batch = pipeline.submit([request])
    pipeline.wait_finished(batch["id"], timeout=15)
    item_id = f"{batch['id']}_0000"
    before = job_rows(pipeline.batch.env["DATABASE_URL"], batch["id"])[item_id]

    ids = pipeline.publish_item(item_payload(batch["id"], 0, request), copies=2)

    def acked_as_duplicates() -> bool:
        return all(any(r["message"] == "duplicate delivery acknowledged" for r in pipeline.records_for(i))
                   for i in ids)

    wait_until(acked_as_duplicates, timeout=10, what="both duplicates to be acknowledged")
    after = job_rows(pipeline.batch.env["DATABASE_URL"], batch["id"])[item_id]
    assert after == before  # same status, outputs, attempts (1) and updated_at
    assert after["status"] == "succeeded" and after["attempts"] == 1
    assert [f.name for f in (tmp_path / "media" / "images" / item_id).iterdir()] == ["0.png"]
    assert after_quiet_period(lambda: sum(len(pipeline.records_for(i)) for i in ids)) == 2
    assert pipeline.emulator.pull(pipeline.dead_letters) == []


def test_concurrent_duplicate_is_acked_without_a_second_generation(
    make_pipeline: Callable[..., Pipeline], standins: StandIns,
) -> None:
    """Two deliveries of one item at once: one generates, the other is acked at once (no attempt spent)."""
    pipeline = make_pipeline(standins.env(VERTEX_DEADLINE_SECONDS="10"))
    prompt = "[standin:slow] a heron standing still"  # the stand-in answers after 2 s
    batch = pipeline.submit([{"kind": "image", "prompt": prompt}])
    pipeline.publish_item(item_payload(batch["id"], 0, {"kind": "image", "prompt": prompt}))

    done = pipeline.wait_finished(batch["id"], timeout=20)
    assert done["status"] == "succeeded"
    item_id = f"{batch['id']}_0000"
    row = job_rows(pipeline.batch.env["DATABASE_URL"], batch["id"])[item_id]
    assert row["attempts"] == 1 and len(row["outputs"]) == 1
    assert standins.calls_for(prompt) == 1
    wait_until(lambda: any(r["message"] in ("delivery of an item in progress acknowledged",
                                            "duplicate delivery acknowledged")
                           for r in pipeline.batch.log_records()), timeout=10, what="the duplicate's ack")
    assert standins.calls_for(prompt) == 1
    assert pipeline.emulator.pull(pipeline.dead_letters) == []


def test_poison_messages_are_acked_and_do_not_loop(make_pipeline: Callable[..., Pipeline]) -> None:
    """Unparseable data and a payload for a nonexistent item: one ERROR line each, acked, never again."""
    pipeline = make_pipeline()
    poison = {
        "not json": b"{this is not json",
        "not utf-8": b"\xff\xfe\xfd",
        "missing fields": b'{"batch_id": "bat_x"}',
        "not an object": b"[1, 2, 3]",
        "nonexistent item": b'{"batch_id": "bat_gone", "item_id": "bat_gone_0000", "request": {}}',
    }
    ids = {name: pipeline.publish_item(data)[0] for name, data in poison.items()}
    ids["attributes only"] = pipeline.emulator.publish(pipeline.topic, b"", {"kind": "no data"})[0]

    def all_seen() -> bool:
        return all(pipeline.records_for(i) for i in ids.values())

    wait_until(all_seen, timeout=10, what="every poison message to be handled")
    lines = after_quiet_period(lambda: {name: pipeline.records_for(i) for name, i in ids.items()})
    assert {name: len(records) for name, records in lines.items()} == {name: 1 for name in ids}
    assert {records[0]["severity"] for records in lines.values()} == {"ERROR"}
    assert "this is not json" not in "\n".join(pipeline.batch.log_lines())
    assert pipeline.emulator.pull(pipeline.dead_letters) == []


def test_transient_failure_stops_after_max_delivery_attempts(
    make_pipeline: Callable[..., Pipeline], standins: StandIns,
) -> None:
    """Vertex always 503: the item is retried MAX_DELIVERY_ATTEMPTS times, then failed and acked."""
    env = standins.env(MAX_DELIVERY_ATTEMPTS="2", VERTEX_DEADLINE_SECONDS="1")
    pipeline = make_pipeline(env)
    prompt = "[standin:unavailable] a storm that never ends"
    batch = pipeline.submit([{"kind": "image", "prompt": prompt}])
    done = pipeline.wait_finished(batch["id"], timeout=20)
    assert done["status"] == "failed"
    assert done["counts"]["failed"] == 1
    item_id = f"{batch['id']}_0000"
    job = pipeline.get_job(item_id)
    assert job["error"]["reason"] == "UPSTREAM_UNAVAILABLE"
    assert "2 attempts" in job["error"]["message"]
    row = job_rows(pipeline.batch.env["DATABASE_URL"], batch["id"])[item_id]
    assert row["attempts"] == 2
    calls = standins.calls_for(prompt)
    assert calls >= 2
    assert after_quiet_period(lambda: standins.calls_for(prompt)) == calls
    assert pipeline.emulator.pull(pipeline.dead_letters) == []


def test_killed_batch_function_loses_no_item(
    make_pipeline: Callable[..., Pipeline], standins: StandIns, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGKILL while an item is mid-generation, restart on the same port, ticks keep running: every item
    still ends succeeded exactly once, whatever Pub/Sub did with the killed delivery."""
    from functions.scheduling import tick
    from shared import config, outbox

    pipeline = make_pipeline(standins.env(VERTEX_DEADLINE_SECONDS="3", ITEM_LEASE_MARGIN_SECONDS="2"))
    slow = "[standin:slow] a leaf that takes its time"  # the stand-in answers it after 2 s
    prompts = [slow if i == 10 else f"a falling leaf {i}" for i in range(30)]
    batch = pipeline.submit([{"kind": "image", "prompt": p} for p in prompts])
    wait_until(lambda: standins.calls_for(slow), timeout=15, interval=0.01,
               what="the slow item to be in flight")
    pipeline.batch.kill()
    assert pipeline.get_batch(batch["id"])["counts"]["succeeded"] < 30, "the kill came too late to test"
    pipeline.batch.start().wait_ready()

    # Cloud Scheduler's tick, in this process: it requeues items whose lease ended with their holder.
    for name, value in (("PUBSUB_BATCH_TOPIC", pipeline.topic), ("PUBSUB_EMULATOR_HOST", pipeline.emulator.host),
                        ("ITEM_REQUEUE_AFTER_SECONDS", "5")):
        monkeypatch.setenv(name, value)
    config.get_settings.cache_clear()
    outbox.reset_publisher()

    def finished() -> bool:
        tick.tick(job_name=None, schedule_time=None)
        return bool(pipeline.get_batch(batch["id"])["status"] == "succeeded")

    wait_until(finished, timeout=60, interval=1.0, what="the batch to finish")
    done = pipeline.get_batch(batch["id"])
    assert done["counts"] == {"queued": 0, "running": 0, "succeeded": 30, "failed": 0, "cancelled": 0}
    rows = job_rows(pipeline.batch.env["DATABASE_URL"], batch["id"])
    assert all(len(row["outputs"]) == 1 for row in rows.values())


def test_mixed_outcomes_give_partially_failed_with_counts(
    make_pipeline: Callable[..., Pipeline], standins: StandIns,
) -> None:
    """Three successes and two permanent failures: partially_failed, 3/2, a reason on each failure."""
    pipeline = make_pipeline(standins.env())
    prompts = ["a calm lake", "[standin:rai-filtered] something filtered", "a quiet forest",
               "[standin:rejected] something rejected", "a distant hill"]
    batch = pipeline.submit([{"kind": "image", "prompt": p} for p in prompts])
    done = pipeline.wait_finished(batch["id"], timeout=20)
    assert done["status"] == "partially_failed"
    assert done["counts"] == {"queued": 0, "running": 0, "succeeded": 3, "failed": 2, "cancelled": 0}
    jobs = [pipeline.get_job(f"{batch['id']}_{i:04d}") for i in range(len(prompts))]
    assert [j["status"] for j in jobs] == ["succeeded", "failed", "succeeded", "failed", "succeeded"]
    assert jobs[1]["error"]["reason"] == "CONTENT_FILTERED"
    assert jobs[3]["error"]["reason"] == "IMAGE_GENERATION_REJECTED"
    assert all(j["error"] is None and len(j["outputs"]) == 1 for j in jobs if j["status"] == "succeeded")
    assert [standins.calls_for(p) for p in prompts] == [1] * 5  # permanent failures are not retried
    assert pipeline.emulator.pull(pipeline.dead_letters) == []


def test_trace_context_crosses_the_hop(make_pipeline: Callable[..., Pipeline]) -> None:
    """POST /v1/batches with a traceparent: the batch function's item lines carry the same trace id."""
    pipeline = make_pipeline()
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    batch = pipeline.submit([{"kind": "image", "prompt": f"a traced comet {i}"} for i in range(3)],
                            headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    pipeline.wait_finished(batch["id"], timeout=15)
    processed = wait_until(
        lambda: [r for r in pipeline.batch.log_records() if r["message"] == "item processed"],
        timeout=5, what="item lines")
    assert len(processed) == 3
    for record in processed:
        assert record["logging.googleapis.com/trace"] == f"projects/{PROJECT}/traces/{trace_id}"
        assert re.fullmatch(r"[0-9a-f]{16}", record["logging.googleapis.com/spanId"])
        assert record["logging.googleapis.com/trace_sampled"] is True


def test_a_batch_items_spans_join_the_submitting_requests_trace(make_pipeline: Callable[..., Pipeline]) -> None:
    """With TRACE_EXPORTER=console both functions write spans; the batch's hang under the POST's trace."""
    traced = {"TRACE_EXPORTER": "console"}
    pipeline = make_pipeline(traced, generation_env=traced)
    trace_id = "5bf92f3577b34da6a3ce929d0e0e4737"
    batch = pipeline.submit([{"kind": "image", "prompt": f"a traced comet {i}"} for i in range(2)],
                            headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    pipeline.wait_finished(batch["id"], timeout=15)

    def spans(process: Any) -> list[dict[str, Any]]:
        return [r for r in process.log_records() if "context" in r and "severity" not in r]

    consumed = wait_until(lambda: [s for s in spans(pipeline.batch) if s["name"] == "pubsub message"] or None,
                          timeout=5, what="batch spans")
    submitted = [s for s in spans(pipeline.generation) if s["name"] == "POST /v1/batches"]
    assert len(submitted) == 1 and len(consumed) == 2
    generation_spans = {s["context"]["span_id"] for s in spans(pipeline.generation)}
    for span in consumed:
        assert span["context"]["trace_id"] == "0x" + trace_id
        assert span["parent_id"] in generation_spans, "each item hangs under a span of the submitting request"
    item_lines = [r for r in pipeline.batch.log_records() if r.get("message") == "item processed"]
    batch_spans = {s["context"]["span_id"][2:] for s in spans(pipeline.batch)}
    assert item_lines and all(r["logging.googleapis.com/spanId"] in batch_spans for r in item_lines)
