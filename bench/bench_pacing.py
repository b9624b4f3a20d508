"""Batches paced to a Vertex AI quota at cloud-like push concurrency (issue: "pace to the quota").

A 1,000-image batch against the Vertex stand-in enforcing 10 calls per second, pushed by the push
driver (pull from the emulator, 32 deliveries in flight over four batch processes, as Pub/Sub does at
scale) with the tick every second; a second owner's 20-image batch is submitted just behind it.
Printed against their baselines: completion over items / quota (goal <= 1.2x), Vertex calls per item
(goal <= 1.05), and the small batch's completion over its fair share (20 items at half the quota,
goal <= 2x). The fleet is warmed up first: cold starts are not pacing.
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.stats import report

MODEL = "imagen-4.0-generate-001"
CALLS, WINDOW = 10, 1.0


def _keys(database_url: str) -> tuple[str, str]:
    from shared import config, database
    from shared.apikeys import create_key

    pepper = config.get_settings().api_key_pepper
    assert pepper is not None
    with database.session_scope() as session:
        big, _ = create_key(session, "bench-pacing-big", ["batch"], pepper=pepper.get_secret_value())
        small, _ = create_key(session, "bench-pacing-small", ["batch"], pepper=pepper.get_secret_value())
    return big, small


def _env(database_url: str, vertex_url: str, gcs_url: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "GOOGLE_CLOUD_PROJECT": "genmedia-bench", "GENERATION_BACKEND": "vertex",
            "VERTEX_BASE_URL": vertex_url, "VERTEX_TOKEN": "standin-token", "OUTPUT_BUCKET": "genmedia-bench-out",
            "STORAGE_EMULATOR_HOST": gcs_url, "GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/bench.json",
            "VERTEX_DEADLINE_SECONDS": "10", "VERTEX_QUOTAS": f"{MODEL}={CALLS}/{WINDOW:g}", "LOG_LEVEL": "WARNING",
            "RATE_LIMIT_READ": "1000000", "RATE_LIMIT_BATCH_ITEMS": "1000000"}


def _items(prefix: str, count: int) -> list[dict[str, Any]]:
    return [{"kind": "image", "model": MODEL, "prompt": f"{prefix} {i}"} for i in range(count)]


def run(database_url: str, emulator: Any, tmp: Path, items: int, small: int) -> dict[str, Any]:
    """Both batches through a warm fleet; their completion times and the Vertex calls they made."""
    from shared import config, outbox
    from tests.e2e.fleet import Ticker, start_fleet
    from tests.standin import gcs_server, vertex_server

    vertex, vertex_server_ = vertex_server.start()
    gcs, gcs_server_ = gcs_server.start()
    with ExitStack() as stack:
        stack.callback(vertex_server_.stop)
        stack.callback(gcs_server_.stop)
        vertex.set_quota(MODEL, CALLS, WINDOW)
        fleet = start_fleet(stack, emulator, _env(database_url, vertex.url, gcs.url), tmp)
        for name in ("PUBSUB_BATCH_TOPIC", "PUBSUB_EMULATOR_HOST", "VERTEX_QUOTAS"):
            os.environ[name] = fleet.generation.env[name]
        config.get_settings.cache_clear()
        outbox.reset_publisher()
        big_key, small_key = _keys(database_url)
        with Ticker(every=WINDOW):
            warm = fleet.submit(_items("warm-up", 2 * len(fleet.batches)), big_key)
            fleet.wait_finished(warm["id"], big_key, timeout=300)
            calls_before = len(vertex.calls("predict"))
            started = time.monotonic()
            big = fleet.submit(_items("a harbour at dawn", items), big_key)
            small_started = time.monotonic()
            little = fleet.submit(_items("a lantern", small), small_key)
            _, small_done = fleet.wait_finished(little["id"], small_key, timeout=items)
            done, big_done = fleet.wait_finished(big["id"], big_key, timeout=10 * items / CALLS)
        calls = len(vertex.calls("predict")) - calls_before
        if os.environ.get("BENCH_PACING_DEBUG"):
            _debug(database_url, big["id"], little["id"])
        return {"big": done, "small_elapsed": small_done - small_started, "elapsed": big_done - started,
                "calls": calls, "refused": vertex.refusals[MODEL], "pushes": dict(fleet.driver.counts)}


def _debug(database_url: str, big: str, small: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        t0 = conn.execute(sa.text("SELECT extract(epoch from created_at)::float8 FROM batches WHERE id=:b"),
                          {"b": small}).scalar_one()
        for batch in (small, big):
            rows = conn.execute(sa.text(
                "SELECT extract(epoch from admitted_at)::float8 - :t0, extract(epoch from updated_at)::float8 - :t0"
                " FROM jobs WHERE batch_id=:b ORDER BY item_index LIMIT 40"), {"b": batch, "t0": t0}).all()
            print(batch[:12], " ".join(f"{a:.1f}/{u:.1f}" for a, u in rows))
    engine.dispose()


def main(database_url: str, items: int = 1000, small: int = 20) -> list[str]:
    """Run the paced batches; print and return the ratio lines."""
    from devtools.pubsub_emulator import EmulatorUnavailable, running_emulator

    with tempfile.TemporaryDirectory(prefix="genmedia-bench-pacing-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            (tmp / "pubsub").mkdir()
            with running_emulator(tmp / "pubsub") as emulator:
                result = run(database_url, emulator, tmp, items, small)
        except EmulatorUnavailable as err:
            line = f"pacing: skipped, Pub/Sub emulator unavailable ({err})"
            print(line, flush=True)
            return [line]
    counts = result["big"]["counts"]
    total = items + small
    lines = [
        report(f"paced batch, {items} images at {CALLS} calls/s, push concurrency 32 "
               f"({counts['succeeded']} succeeded, {counts['failed']} failed)", result["elapsed"],
               "items / quota", items / CALLS * WINDOW, "s", "<= 1.2x"),
        report(f"Vertex calls per item ({result['calls']} calls, {result['refused']} refused, for {total} items)",
               result["calls"] / total, "one call per item", 1.0, "calls", "<= 1.05x"),
        report(f"a second owner's {small}-image batch behind it", result["small_elapsed"],
               "its fair share (half the quota)", small / (CALLS / 2) * WINDOW, "s", "<= 2x"),
    ]
    print(f"pacing push deliveries: {result['pushes']}", flush=True)
    return lines


if __name__ == "__main__":
    import sys

    from bench.__main__ import _database_url

    main(sys.argv[1] if len(sys.argv) > 1 else _database_url())
