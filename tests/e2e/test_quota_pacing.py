"""Batches paced to the Vertex AI quota at cloud-like push concurrency: 32 deliveries in flight over
four batch processes (the push driver; the emulator alone pushes two at a time and hides the problem),
against a Vertex stand-in that refuses every call past its quota per window, ticking every window."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from devtools.pubsub_emulator import Emulator
from shared import config, outbox
from tests.conftest import mint_key
from tests.e2e.conftest import skip_module_without_emulator
from tests.e2e.fleet import Fleet, Ticker, start_fleet
from tests.standin.gcs_server import GcsStandIn
from tests.standin.vertex_server import VertexStandIn

skip_module_without_emulator()
pytestmark = pytest.mark.e2e
MODEL = "imagen-4.0-generate-001"


@pytest.fixture
def fleet(pubsub_emulator: Emulator, db: Any, tmp_path: Path, vertex_standin: VertexStandIn,
          gcs_standin: GcsStandIn, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Fleet]]:
    """Build a fleet whose functions (and this process's ticker) pace MODEL to `quota`."""
    with ExitStack() as stack:

        def build(quota: str) -> Fleet:
            env = {"DATABASE_URL": db.url, "GOOGLE_CLOUD_PROJECT": "genmedia-e2e", "GENERATION_BACKEND": "vertex",
                   "VERTEX_BASE_URL": vertex_standin.url, "VERTEX_TOKEN": "standin-token",
                   "OUTPUT_BUCKET": "genmedia-e2e-out", "STORAGE_EMULATOR_HOST": gcs_standin.url,
                   "GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/genmedia-e2e-credentials.json",
                   "VERTEX_DEADLINE_SECONDS": "10", "VERTEX_QUOTAS": f"{MODEL}={quota}", "LOG_LEVEL": "INFO",
                   "RATE_LIMIT_READ": "1000000", "RATE_LIMIT_BATCH_ITEMS": "1000000"}
            built = start_fleet(stack, pubsub_emulator, env, tmp_path)
            for name in ("PUBSUB_BATCH_TOPIC", "PUBSUB_EMULATOR_HOST", "VERTEX_QUOTAS"):
                monkeypatch.setenv(name, built.generation.env[name])
            config.get_settings.cache_clear()
            outbox.reset_publisher()
            return built

        yield build


def item_rows(url: str, batch_id: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.text(
                "SELECT id, status, attempts FROM jobs WHERE batch_id = :b"), {"b": batch_id}).mappings()]
    finally:
        engine.dispose()


def run_batch(fleet: Fleet, items: int, window: float) -> tuple[dict[str, Any], float, str]:
    """Warm every process up (cold starts are not pacing), then time one batch of `items` to the end."""
    key = mint_key("pacing", ("batch",))
    with Ticker(every=window):
        warm = fleet.submit([{"kind": "image", "model": MODEL, "prompt": f"warm-up {i}"}
                             for i in range(2 * len(fleet.batches))], key)
        fleet.wait_finished(warm["id"], key, timeout=120)
        started = time.monotonic()
        batch = fleet.submit([{"kind": "image", "model": MODEL, "prompt": f"a tide pool {i}"}
                              for i in range(items)], key)
        done, finished = fleet.wait_finished(batch["id"], key, timeout=120)
    return done, finished - started, batch["id"]


def test_a_batch_far_above_the_quota_completes_near_the_optimum_without_retrying_into_it(
    fleet: Callable[..., Fleet], vertex_standin: VertexStandIn, db: Any,
) -> None:
    """60 items at 5 calls per second: all succeed, near items/quota (goal 2.5x), <= 1.25 calls per item."""
    items, calls, window = 60, 5, 1.0
    vertex_standin.set_quota(MODEL, calls, window)
    running = fleet(f"{calls}/{window:g}")
    done, elapsed, batch_id = run_batch(running, items, window)
    optimum = items / calls * window
    made = len([c for c in vertex_standin.calls("predict") if "warm-up" not in str(c.body)])
    print(f"\npacing: {items} items in {elapsed:.1f} s = {elapsed / optimum:.2f}x the optimum ({optimum:.0f} s); "
          f"{made / items:.2f} calls per item, {vertex_standin.refusals[MODEL]} refused; "
          f"push deliveries {dict(running.driver.counts)}")
    assert done["counts"] == {"queued": 0, "running": 0, "succeeded": items, "failed": 0, "cancelled": 0}
    assert all(row["attempts"] == 1 for row in item_rows(db.url, batch_id))
    assert made <= 1.25 * items  # retrying into the quota shows here, whatever the machine's speed
    # Printed above against the 2.5x goal; asserted only far beyond it, so a loaded machine cannot fail it.
    assert elapsed <= 6 * optimum


def test_a_quota_cut_at_run_time_defers_items_and_fails_none(
    fleet: Callable[..., Fleet], vertex_standin: VertexStandIn, db: Any,
) -> None:
    """Configured for 6 calls a second, Vertex admits 3: the refused items go back to the queue (no attempt
    spent, no nack), the budget adapts downwards, and every item still succeeds once."""
    items, window = 30, 1.0
    vertex_standin.set_quota(MODEL, 3, window)
    running = fleet(f"6/{window:g}")
    done, elapsed, batch_id = run_batch(running, items, window)
    made = len([c for c in vertex_standin.calls("predict") if "warm-up" not in str(c.body)])
    records = running.log_records()
    deferred = [r for r in records if r["message"] == "vertex quota refused the item, deferred"
                and r["item_id"].startswith(batch_id)]
    print(f"\nquota cut: {items} items in {elapsed:.1f} s, {made / items:.2f} calls per item, "
          f"{len(deferred)} deferred, push {dict(running.driver.counts)}")
    assert done["counts"] == {"queued": 0, "running": 0, "succeeded": items, "failed": 0, "cancelled": 0}
    assert all(row["attempts"] == 1 for row in item_rows(db.url, batch_id))  # a 429 spends no attempt
    assert deferred, "the stand-in refused nothing: the test did not cut the quota"
    assert running.driver.counts["nacks"] == 0  # deferred, never nacked into Pub/Sub's backoff
    assert made == items + len(deferred)
