"""The scheduling tick's claim phase with 1,000 due schedules, with 1 and 4 concurrent tickers,
against the floor: inserting the same 1,000 outbox rows in one transaction.

Each claimed schedule costs a run row, a batch, a job and an outbox row, written with multi-row
INSERTs in transactions of TICK_CLAIM_CHUNK schedules. Publishing is left out (it is the same for
any design); the numbers are the database work that makes a firing exactly-once.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from bench.stats import median, report

SCHEDULES = 1000
TOPIC = "projects/genmedia-bench/topics/batches"


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def _reset(url: str) -> None:
    """1,000 cron schedules, all due a minute ago, and nothing fired yet."""
    request = json.dumps([{"kind": "image", "prompt": "a lighthouse", "model": "gemini-2.5-flash-image"}])
    due = datetime.now(UTC) - timedelta(minutes=1)
    with _engine(url).begin() as conn:
        conn.execute(sa.text("TRUNCATE schedules, schedule_runs, batches, jobs, outbox CASCADE"))
        conn.execute(
            sa.text("INSERT INTO schedules (id, requests, is_batch, cron, timezone, next_run_at) "
                    "SELECT 'sch_bench_' || g, CAST(:r AS jsonb), false, '*/5 * * * *', 'Europe/Paris', :due "
                    "FROM generate_series(1, :n) g"),
            {"r": request, "due": due, "n": SCHEDULES})


def _ticker(url: str) -> int:
    """One ticker process: claim until nothing is due; returns how many it fired."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("GENERATION_BACKEND", "local")
    # Every run is drawn from its owner's budget (one upsert per owner per chunk); room for all of them.
    os.environ.setdefault("RATE_LIMIT_GENERATE", str(10 * SCHEDULES))
    from functions.scheduling.tick import claim_due_schedules
    from shared.config import get_settings

    chunk, fired = get_settings().tick_claim_chunk, 0
    while True:
        claim = claim_due_schedules(chunk, TOPIC)
        fired += claim.fired
        if not claim.more:
            return fired


def _tick(url: str, tickers: int, pool: ProcessPoolExecutor) -> float:
    _reset(url)
    started = time.perf_counter()
    fired = sum(pool.map(_ticker, [url] * tickers))
    elapsed = time.perf_counter() - started
    assert fired == SCHEDULES, f"{fired} fired, expected {SCHEDULES} exactly once"
    return elapsed


def _floor(url: str) -> float:
    rows = [{"topic": TOPIC, "payload": json.dumps({"batch_id": f"b{i}", "item_id": f"b{i}_0000"})}
            for i in range(SCHEDULES)]
    with _engine(url).begin() as conn:
        conn.execute(sa.text("TRUNCATE outbox"))
    started = time.perf_counter()
    with _engine(url).begin() as conn:
        conn.execute(sa.text("INSERT INTO outbox (topic, payload) VALUES (:topic, CAST(:payload AS jsonb))"), rows)
    return time.perf_counter() - started


def main(database_url: str, rounds: int = 3) -> list[str]:
    """Both ticker counts, `rounds` times each, against the floor."""
    lines = []
    floor = median([_floor(database_url) for _ in range(rounds)])
    for tickers in (1, 4):
        with ProcessPoolExecutor(max_workers=tickers) as pool:
            pool.submit(int).result()  # start the workers before timing
            elapsed = median([_tick(database_url, tickers, pool) for _ in range(rounds)])
        lines.append(report(f"tick, {tickers} ticker(s), 1000 due schedules", elapsed,
                            "inserting 1000 outbox rows in one transaction", floor, "s"))
        print(f"  = {SCHEDULES / elapsed:.0f} schedules/s with {tickers} ticker(s)", flush=True)
    with _engine(database_url).begin() as conn:
        conn.execute(sa.text("TRUNCATE schedules, schedule_runs, batches, jobs, outbox CASCADE"))
    return lines
