"""The pool and sessions against a real PostgreSQL: sizing, limits, failures and recovery."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa

from shared import config, database
from shared.exceptions import (
    DatabaseConnectionError,
    PoolExhaustedError,
    QueryError,
    ServiceUnavailableError,
    TransactionError,
)
from tests.conftest import ROOT, DatabaseHandle


def configure(monkeypatch: pytest.MonkeyPatch, url: str, **env: Any) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    config.get_settings.cache_clear()
    database.dispose_engine()


def server_connections(url: str, app: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        count = conn.execute(
            sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :app"), {"app": app}
        ).scalar_one()
    engine.dispose()
    return int(count)


def test_session_commits_on_success(db: DatabaseHandle) -> None:
    with database.session_scope() as session:
        session.execute(sa.text("INSERT INTO batches (id, total) VALUES ('b1', 1)"))
    with database.session_scope() as session:
        assert session.execute(sa.text("SELECT count(*) FROM batches")).scalar_one() == 1


def test_session_rolls_back_on_error(db: DatabaseHandle) -> None:
    with pytest.raises(ZeroDivisionError), database.session_scope() as session:
        session.execute(sa.text("INSERT INTO batches (id, total) VALUES ('b1', 1)"))
        _ = 1 / 0
    with database.session_scope() as session:
        assert session.execute(sa.text("SELECT count(*) FROM batches")).scalar_one() == 0


def test_get_db_yields_a_working_session(db: DatabaseHandle) -> None:
    gen = database.get_db()
    session = next(gen)
    assert session.execute(sa.text("SELECT 1")).scalar_one() == 1
    with pytest.raises(StopIteration):
        next(gen)


def test_a_bad_statement_is_a_query_error_with_internal_detail(db: DatabaseHandle) -> None:
    with pytest.raises(QueryError) as caught, database.session_scope() as session:
        session.execute(sa.text("SELECT * FROM no_such_table"))
    assert caught.value.http_status == 500
    assert "no_such_table" in (caught.value.detail or "")
    assert "no_such_table" not in caught.value.message


def test_serialization_failure_is_retryable(db: DatabaseHandle) -> None:
    with pytest.raises(TransactionError) as caught, database.session_scope() as session:
        session.execute(sa.text("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001'; END $$"))
    assert caught.value.retryable


def test_run_in_transaction_retries_a_serialization_failure(db: DatabaseHandle) -> None:
    calls = []

    def work(session: Any) -> int:
        calls.append(1)
        if len(calls) == 1:
            session.execute(sa.text("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40P01'; END $$"))
        return int(session.execute(sa.text("SELECT 7")).scalar_one())

    assert database.run_in_transaction(work) == 7
    assert len(calls) == 2


def test_ten_concurrent_sessions_work(db: DatabaseHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, db.url, DB_POOL_SIZE=5, DB_MAX_OVERFLOW=5)

    def work(i: int) -> int:
        with database.session_scope() as session:
            return int(session.execute(sa.text("SELECT :i FROM pg_sleep(0.05)"), {"i": i}).scalar_one())

    with ThreadPoolExecutor(max_workers=12) as pool:
        assert sorted(pool.map(work, range(12))) == list(range(12))


def test_pool_grows_into_overflow_and_never_beyond(db: DatabaseHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    url = db.url + "&application_name=pool_growth"
    configure(monkeypatch, url, DB_POOL_SIZE=2, DB_MAX_OVERFLOW=1, DB_POOL_TIMEOUT=10)
    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, server_connections(db.url, "pool_growth"))
            time.sleep(0.01)

    # The first three sessions meet at a barrier while each holds its connection, so the pool has
    # provably grown into its overflow however slowly the machine schedules threads; the watcher
    # checks it never goes beyond.
    all_held = threading.Barrier(3, timeout=30)
    first_three = iter(range(3))
    seen_together: list[int] = []
    lock = threading.Lock()

    def work(_: int) -> None:
        with database.session_scope() as session:
            session.execute(sa.text("SELECT pg_sleep(0.05)"))
            with lock:
                place = next(first_three, None)
            if place is not None and all_held.wait() == 0:
                seen_together.append(server_connections(db.url, "pool_growth"))

    watcher = threading.Thread(target=watch)
    watcher.start()
    with ThreadPoolExecutor(max_workers=40) as pool:
        list(pool.map(work, range(40)))
    stop.set()
    watcher.join()
    assert seen_together == [3]
    assert peak <= 3
    assert database.pool_stats()["max_connections"] == 3


def test_checkout_waits_at_most_the_pool_timeout_then_503(db: DatabaseHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, db.url, DB_POOL_SIZE=1, DB_MAX_OVERFLOW=0, DB_POOL_TIMEOUT=0.5)
    holder = database.get_engine().connect()
    try:
        started = time.monotonic()
        with pytest.raises(PoolExhaustedError) as caught, database.session_scope() as session:
            session.execute(sa.text("SELECT 1"))
        waited = time.monotonic() - started
    finally:
        holder.close()
    assert 0.4 <= waited < 10
    assert caught.value.http_status == 503 and caught.value.retry_after


def test_unreachable_database_is_a_connection_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    configure(monkeypatch, f"postgresql+pg8000://postgres@/x?unix_sock={tmp_path}/.s.PGSQL.1")
    with pytest.raises(DatabaseConnectionError), database.session_scope() as session:
        session.execute(sa.text("SELECT 1"))
    with pytest.raises(ServiceUnavailableError):
        database.check_health()


def test_health_check_reports_pool_statistics(db: DatabaseHandle) -> None:
    health = database.check_health()
    assert health["database"] == "ok"
    assert set(health["pool"]) == {"size", "checked_in", "checked_out", "overflow", "max_connections"}


def test_the_engine_is_built_on_first_use_not_at_import() -> None:
    code = "import shared.database as d, sys; assert d._engine is None; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_a_restarted_database_is_used_again_without_restarting_us(db: DatabaseHandle) -> None:
    if db.server is None:
        pytest.skip("needs the embedded server to restart it")
    with database.session_scope() as session:
        session.execute(sa.text("SELECT 1"))
    db.server.restart()  # type: ignore[attr-defined]
    with database.session_scope() as session:
        assert session.execute(sa.text("SELECT 1")).scalar_one() == 1


def test_migrations_are_idempotent_and_safe_concurrently(test_database: DatabaseHandle) -> None:
    name = f"mig_{int(time.time() * 1000) % 10**9}"
    if test_database.server is None:
        pytest.skip("creates a scratch database on the embedded server")
    url = test_database.server.create_database(name)  # type: ignore[attr-defined]
    cmd = [sys.executable, "-m", "devtools.migrate"]
    env = {"DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE) for _ in range(3)]
    assert all(p.wait(timeout=120) == 0 for p in procs), [p.stderr.read() for p in procs if p.stderr]
    assert subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True).returncode == 0
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    engine.dispose()
