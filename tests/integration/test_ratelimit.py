"""Rate limits in PostgreSQL: exact under concurrency across processes, per key and family, cheap to prune."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from shared import ratelimit
from shared.database import session_scope
from shared.exceptions import RateLimitError
from tests.conftest import ROOT, DatabaseHandle

HOUR = 3600


def avoid_window_edge(window_seconds: int, margin: float = 15.0) -> None:
    """Sleep past the next window boundary when it is too close for a test to finish inside one window."""
    left = window_seconds - time.time() % window_seconds
    if left < margin:
        time.sleep(left + 0.5)


def spend(key_id: str, family: str = "generate", cost: int = 1, limit: int = 5,
          window: int = HOUR) -> ratelimit.Quota:
    return ratelimit.enforce_rate_limit(key_id, family, cost, limit, window)


def burst_worker(key_id: str, family: str, cost: int, limit: int, attempts: int, threads: int,
                 start_at: float) -> None:
    """One 'instance': wait for the shared start time, then fire attempts from a thread pool."""
    time.sleep(max(0.0, start_at - time.time()))

    def attempt(_: int) -> int:
        try:
            ratelimit.enforce_rate_limit(key_id, family, cost, limit, HOUR)
        except RateLimitError:
            return 0
        return cost

    with ThreadPoolExecutor(max_workers=threads) as pool:
        granted = list(pool.map(attempt, range(attempts)))
    print(json.dumps({"granted_units": sum(granted), "granted": sum(1 for g in granted if g)}))


def run_instances(db: DatabaseHandle, *, cost: int, limit: int, attempts: int, threads: int = 8,
                  instances: int = 2) -> list[dict[str, int]]:
    env = {**os.environ, "DATABASE_URL": db.url, "DB_POOL_SIZE": str(threads), "DB_MAX_OVERFLOW": "0",
           "PYTHONPATH": str(ROOT)}
    start_at = time.time() + 3.0  # both processes import and connect first, then race together
    code = ("import sys; from tests.integration.test_ratelimit import burst_worker; "
            f"burst_worker('k1', 'generate', {cost}, {limit}, {attempts}, {threads}, {start_at})")
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(instances)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def stored_count(key_id: str, family: str = "generate") -> int:
    with session_scope() as session:
        return int(session.execute(
            sa.text("SELECT coalesce(sum(count), 0) FROM rate_limits WHERE key_id = :k AND family = :f"),
            {"k": key_id, "f": family}).scalar_one())


def test_two_instances_racing_let_through_exactly_the_limit(db: DatabaseHandle) -> None:
    avoid_window_edge(HOUR)
    results = run_instances(db, cost=1, limit=37, attempts=60)
    assert sum(r["granted"] for r in results) == 37
    assert stored_count("k1") == 37


def test_batches_count_their_items_exactly_across_instances(db: DatabaseHandle) -> None:
    avoid_window_edge(HOUR)
    results = run_instances(db, cost=7, limit=100, attempts=20)
    assert sum(r["granted_units"] for r in results) == 98  # 14 batches of 7; a 15th would exceed 100
    assert stored_count("k1") == 98


def test_over_the_limit_is_429_with_retry_after_to_the_window_end(db: DatabaseHandle) -> None:
    avoid_window_edge(60, margin=3)
    for used in range(1, 4):
        quota = spend("k1", limit=3, window=60)
        assert (quota.used, quota.remaining) == (used, 3 - used)
    with pytest.raises(RateLimitError) as caught:
        spend("k1", limit=3, window=60)
    err = caught.value
    assert (err.http_status, err.reason, err.retryable) == (429, "RATE_LIMITED", True)
    expected = 60 - time.time() % 60
    assert err.retry_after is not None and 1 <= err.retry_after <= 60
    assert abs(err.retry_after - expected) <= 2
    assert "k1" not in err.message


def test_a_refused_request_spends_nothing(db: DatabaseHandle) -> None:
    avoid_window_edge(HOUR)
    spend("k1", cost=8, limit=10)
    with pytest.raises(RateLimitError):
        spend("k1", cost=5, limit=10)  # a batch too big for what is left
    assert spend("k1", cost=2, limit=10).used == 10  # the single requests behind it still fit


def test_a_cost_above_the_whole_limit_is_a_400_not_an_endless_429(db: DatabaseHandle) -> None:
    with pytest.raises(ratelimit.CostOverLimitError) as caught:
        spend("k1", cost=11, limit=10)
    assert caught.value.http_status == 400
    assert stored_count("k1") == 0


def test_keys_and_families_have_separate_budgets(db: DatabaseHandle) -> None:
    avoid_window_edge(HOUR)
    spend("k1", limit=1)
    spend("k2", limit=1)
    spend("k1", family="batch", limit=1)
    with pytest.raises(RateLimitError):
        spend("k1", limit=1)


def test_a_new_window_starts_a_new_budget(db: DatabaseHandle) -> None:
    avoid_window_edge(2, margin=1.5)
    spend("k1", limit=1, window=2)
    with pytest.raises(RateLimitError) as caught:
        spend("k1", limit=1, window=2)
    time.sleep(caught.value.retry_after or 2)  # rounded up, so this lands in the next window
    assert spend("k1", limit=1, window=2).used == 1


def test_prune_removes_only_old_windows(db: DatabaseHandle) -> None:
    avoid_window_edge(HOUR)
    spend("k1")
    with session_scope() as session:
        session.execute(sa.text(
            "INSERT INTO rate_limits (key_id, family, window_start, count) VALUES"
            " ('k1', 'generate', now() - interval '3 hours', 4),"
            " ('k2', 'batch', now() - interval '2 hours', 9)"
        ))
    with session_scope() as session:
        assert ratelimit.prune_rate_limits(session) == 2
    assert stored_count("k1") == 1


def test_invalid_arguments_are_programming_errors(db: DatabaseHandle) -> None:
    for cost, limit, window in [(0, 1, 60), (1, 0, 60), (1, 1, 0)]:
        with pytest.raises(ValueError):
            spend("k1", cost=cost, limit=limit, window=window)
