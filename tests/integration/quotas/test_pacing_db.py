"""The Vertex AI budget in a real PostgreSQL: concurrent claimers, owners' turns, the synchronous share,
estimates, and the one log line per window."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from shared import config
from shared.batches import NewBatch, create_batches, get_batch
from shared.database import get_engine, session_scope
from shared.logging import capture_logs
from shared.media.capabilities import resolve
from shared.media.request import GenerationRequest
from shared.quotas.admission import QuotaShareSpentError, admit_sync
from shared.quotas.queue import close_windows, dispatch
from tests.servers import make_client

MODEL = "imagen-4.0-generate-001"
TOPIC = "projects/genmedia-test/topics/batches"


def pace(monkeypatch: pytest.MonkeyPatch, quota: str, share: float = 0.2) -> None:
    monkeypatch.setenv("VERTEX_QUOTAS", f"{MODEL}={quota}")
    monkeypatch.setenv("VERTEX_QUOTA_SYNC_SHARE", str(share))
    monkeypatch.setenv("PUBSUB_BATCH_TOPIC", TOPIC)
    monkeypatch.setenv("FUNCTION_CONCURRENCY", "8")  # eight threads, eight connections
    config.get_settings.cache_clear()


def submit(batch_id: str, owner: str, count: int) -> None:
    requests = [resolve(GenerationRequest(kind="image", prompt=f"{batch_id} {i}", model=MODEL)) for i in range(count)]
    with session_scope() as session:
        create_batches(session, [NewBatch(batch_id, owner, requests)], topic=TOPIC)


def scalar(sql: str, **params: Any) -> Any:
    with session_scope() as session:
        return session.execute(sa.text(sql), params).scalar_one()


class BudgetWriteWatch:
    """Records, per connection, any statement run after a write of quota_budgets in the same transaction."""

    def __init__(self) -> None:
        self.after_write: list[str] = []
        self.writes = 0
        self._dirty: set[int] = set()
        self._lock = threading.Lock()

    def before_execute(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        with self._lock:
            if id(conn.connection.dbapi_connection) in self._dirty:
                self.after_write.append(statement.split()[0])

    def after_execute(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        written = statement.lstrip().startswith(("UPDATE quota_budgets", "INSERT INTO quota_budgets"))
        if written and cursor.rowcount == 1:  # a lost swap wrote (and locked) nothing
            with self._lock:
                self._dirty.add(id(conn.connection.dbapi_connection))
                self.writes += 1

    def end(self, conn: Any) -> None:
        with self._lock:
            self._dirty.discard(id(conn.connection.dbapi_connection))


def sample_lock_waits(url: str, stop: threading.Event, seen: dict[str, float]) -> None:
    """Poll pg_locks for ungranted locks: how often anyone waited, and the longest wait seen."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    query = sa.text("SELECT count(*), coalesce(max(extract(epoch FROM clock_timestamp() - waitstart)), 0)::float8"
                    " FROM pg_locks WHERE NOT granted")
    with engine.connect() as conn:
        while not stop.is_set():
            waiting, longest = conn.execute(query).one()
            conn.rollback()
            seen["samples"] += 1
            seen["samples_with_waiters"] += bool(waiting)
            seen["longest_wait_s"] = max(seen["longest_wait_s"], longest)
    engine.dispose()


def test_eight_concurrent_claimers_share_one_budget_and_hold_its_row_only_to_their_commit(
    db: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """4 synchronous claimers and 4 dispatchers at once: every grant is counted exactly once (no lost
    update), slots never overlap, and no transaction runs a statement after writing the budget row."""
    pace(monkeypatch, "6000/60", share=0.5)  # 100 calls/s: enough slots for everyone
    for owner in range(4):
        submit(f"bat_{owner}", f"owner{owner}", 60)
    watch = BudgetWriteWatch()
    engine = get_engine()
    sa.event.listen(engine, "before_cursor_execute", watch.before_execute)
    sa.event.listen(engine, "after_cursor_execute", watch.after_execute)
    sa.event.listen(engine, "commit", watch.end)
    sa.event.listen(engine, "rollback", watch.end)
    seen: dict[str, float] = defaultdict(float)
    stop = threading.Event()
    sampler = threading.Thread(target=sample_lock_waits, args=(db.url, stop, seen))
    granted_sync, errors = [0] * 4, []
    barrier = threading.Barrier(8)

    def sync_claimer(index: int) -> None:
        barrier.wait()
        for _ in range(40):
            with session_scope() as session:
                session.execute(sa.text("SELECT 1"))  # the caller's own work comes first
                admit_sync(session, MODEL)
            granted_sync[index] += 1

    def dispatcher() -> None:
        barrier.wait()
        for _ in range(40):
            dispatch(MODEL, TOPIC)
            time.sleep(0.01)

    def run(target: Any, *args: Any) -> None:
        try:
            target(*args)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=run, args=(sync_claimer, i)) for i in range(4)]
    threads += [threading.Thread(target=run, args=(dispatcher,)) for _ in range(4)]
    sampler.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    sampler.join()
    for name, listener in (("before_cursor_execute", watch.before_execute),
                           ("after_cursor_execute", watch.after_execute), ("commit", watch.end),
                           ("rollback", watch.end)):
        sa.event.remove(engine, name, listener)
    print(f"\nlock waits under 8 claimers: {int(seen['samples_with_waiters'])} of {int(seen['samples'])} samples "
          f"saw a waiter, longest wait {seen['longest_wait_s'] * 1000:.1f} ms, {watch.writes} budget writes")
    assert not errors
    admitted_items = scalar("SELECT count(*) FROM jobs WHERE admitted_at IS NOT NULL")
    assert admitted_items == scalar("SELECT count(*) FROM outbox")
    slots = scalar("SELECT count(DISTINCT admitted_at) FROM jobs WHERE admitted_at IS NOT NULL")
    assert slots == admitted_items  # never two items on one slot
    assert sum(granted_sync) == 160
    assert watch.writes > 0 and watch.after_write == []


def test_owners_take_turns_so_a_small_batch_behind_a_large_one_goes_at_once(
    db: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    pace(monkeypatch, "6/1")  # a slot every 1/6 s, 2 s ahead: 13 slots per dispatch
    submit("bat_big", "alice", 100)
    first = dispatch(MODEL, TOPIC)  # alice alone: her first 12 or 13
    assert 12 <= first <= 13
    submit("bat_small", "bob", 5)
    time.sleep(1.0)
    assert dispatch(MODEL, TOPIC) >= 6  # at least the slots of the second that passed
    with session_scope() as session:
        order = session.execute(sa.text(
            "SELECT owner_id FROM jobs WHERE admitted_at IS NOT NULL ORDER BY admitted_at")).scalars().all()
    assert order[first:first + 6] == ["bob", "alice"] * 3  # bob first: served longest ago
    with session_scope() as session:
        small = get_batch(session, "bat_small")
        big = get_batch(session, "bat_big")
    assert small.estimated_completion_at is not None and big.estimated_completion_at is not None
    now = datetime.now(UTC)
    # bob's last 2 items: 2 turns each for him and alice, 1/6 s apart; alice's 81 left take their own time.
    assert (small.estimated_completion_at - now).total_seconds() < 3
    assert (big.estimated_completion_at - now).total_seconds() > 81 / 6


def test_the_sync_share_answers_429_with_the_seconds_to_the_next_window_without_calling_vertex(
    db: Any, api_key: str, vertex_env: dict[str, str], vertex_standin: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    pace(monkeypatch, "10/60")  # 20% of 10: two synchronous calls per minute
    client = make_client("generation", key=api_key)
    body = {"kind": "image", "prompt": "a quiet harbour", "model": MODEL}
    assert [client.post("/v1/generations", json=body).status_code for _ in range(2)] == [201, 201]
    refused = client.post("/v1/generations", json=body)
    assert refused.status_code == 429
    error = refused.get_json()["error"]
    assert error["details"][0]["reason"] == "VERTEX_QUOTA_EXHAUSTED"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert len(vertex_standin.calls("predict")) == 2
    assert scalar("SELECT count(*) FROM jobs") == 2  # the refused request left nothing behind
    with pytest.raises(QuotaShareSpentError), session_scope() as session:
        admit_sync(session, MODEL)


def test_each_window_logs_one_line_with_what_it_admitted_and_deferred(
    db: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    pace(monkeypatch, "200/2", share=0.5)
    time.sleep(2 - time.time() % 2 + 0.05)  # start at the beginning of a window
    with capture_logs() as records:
        for _ in range(3):
            with session_scope() as session:
                admit_sync(session, MODEL)
        time.sleep(2.1)  # the window ends
        assert close_windows() == 1
        assert close_windows() == 0
        with session_scope() as session:
            admit_sync(session, MODEL)
    lines = [r for r in records if r["message"].startswith("vertex quota window")]
    assert len(lines) == 1
    assert (lines[0]["model"], lines[0]["admitted"], lines[0]["deferred"]) == (MODEL, 3, 0)
