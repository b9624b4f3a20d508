"""The module-level connection pool, sessions that commit or roll back, and typed database errors.

The engine is declared at cold start and built on first use (thread-safe), never at import: a cold
start that never touches the database never pays for it. One small pool per instance, sized from the
instance's concurrency (see `Settings.pool_size`), because every instance of every function shares
one Cloud SQL `max_connections` budget.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import create_engine, exc, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import QueuePool

from shared.config import Settings, get_settings
from shared.exceptions import (
    DatabaseConnectionError,
    DatabaseError,
    GenmediaError,
    PoolExhaustedError,
    QueryError,
    ServiceUnavailableError,
    TransactionError,
)
from shared.telemetry import metrics, tracing

__all__ = [
    "Base",
    "check_health",
    "dispose_engine",
    "get_db",
    "get_engine",
    "pool_stats",
    "run_in_transaction",
    "session_scope",
    "translate_error",
]
# A checkout slower than this (waiting for a pooled connection, or opening one) is a metric fact.
_SLOW_CHECKOUT_SECONDS = 0.05

T = TypeVar("T")

# SQLSTATEs a retry can cure: serialization failure, deadlock, and the server going away.
_RETRYABLE_TX = {"40001", "40P01"}
_CONNECTION_STATES = {"57P01", "57P02", "57P03", "08000", "08003", "08006", "08001", "08004"}

_engine: Engine | None = None
_sessions: sessionmaker[Session] | None = None
_lock = threading.Lock()


class Base(DeclarativeBase):
    """Declarative base of every table; the schema itself is owned by Alembic migrations."""


def _connector_creator(settings: Settings) -> Callable[[], Any]:
    """A pg8000 connection factory through the Cloud SQL Python Connector (imported only here)."""
    from google.cloud.sql.connector import Connector  # costs ~1 s: only on Cloud SQL

    # "lazy" refreshes certificates on demand: no background task that Cloud Functions would
    # freeze between requests (the documented setting for serverless).
    connector = Connector(refresh_strategy="lazy")
    password = settings.db_pass.get_secret_value() if settings.db_pass else None

    instance = settings.instance_connection_name
    assert instance, "only called with INSTANCE_CONNECTION_NAME set"

    def connect() -> Any:
        return connector.connect(
            instance,
            "pg8000",
            user=settings.db_user,
            password=None if settings.db_iam_auth else password,
            db=settings.db_name,
            enable_iam_auth=settings.db_iam_auth,
        )

    return connect


def _build_engine(settings: Settings) -> Engine:
    pool_args: dict[str, Any] = {
        "poolclass": QueuePool,
        # Kept small: connections = max_instances x (pool_size + max_overflow) across the fleet.
        "pool_size": settings.pool_size,
        # Bursts borrow a few more connections, closed again when returned.
        "max_overflow": settings.max_overflow,
        # Wait this long for a free connection, then answer 503 with Retry-After, not hang.
        "pool_timeout": settings.db_pool_timeout,
        # Cloud SQL and proxies drop idle connections; recycle before they do.
        "pool_recycle": settings.db_pool_recycle,
        # An instance thawed after minutes idle finds dead sockets: test each checkout (one round trip).
        "pool_pre_ping": True,
        # LIFO keeps the idle tail idle, so recycle can close it instead of keeping all warm.
        "pool_use_lifo": True,
    }
    if settings.database_url is not None:
        return create_engine(
            settings.database_url.get_secret_value(),
            connect_args={"timeout": settings.db_connect_timeout},
            **pool_args,
        )
    if settings.instance_connection_name:
        return create_engine("postgresql+pg8000://", creator=_connector_creator(settings), **pool_args)
    raise DatabaseConnectionError(detail="neither DATABASE_URL nor INSTANCE_CONNECTION_NAME is set")


def get_engine() -> Engine:
    """The process-wide engine, built on first use."""
    global _engine, _sessions
    if _engine is None:
        with _lock:
            if _engine is None:
                engine = _build_engine(get_settings())
                _sessions = sessionmaker(bind=engine, expire_on_commit=False)
                _engine = engine
    return _engine


def dispose_engine() -> None:
    """Close every pooled connection and forget the engine (tests, and after a fork)."""
    global _engine, _sessions
    with _lock:
        if _engine is not None:
            _engine.dispose()
        _engine, _sessions = None, None


def _forget_engine_after_fork() -> None:
    """A forked child must not use its parent's sockets: drop them unclosed and build anew."""
    global _engine, _sessions
    if _engine is not None:
        _engine.dispose(close=False)
    _engine, _sessions = None, None


os.register_at_fork(after_in_child=_forget_engine_after_fork)


def _sqlstate(err: exc.DBAPIError) -> str | None:
    orig = err.orig
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], dict):
        code = args[0].get("C")
        return str(code) if code else None
    return None


def translate_error(err: BaseException) -> GenmediaError:
    """Map a SQLAlchemy/driver exception to the tree; the original goes in `detail` (logs only)."""
    if isinstance(err, GenmediaError):
        return err
    detail = f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"
    if isinstance(err, exc.TimeoutError):  # pool checkout timeout, not the builtin TimeoutError
        metrics.record(metrics.DB_POOL_EXHAUSTED)
        return PoolExhaustedError(detail=detail)
    if isinstance(err, exc.DBAPIError):
        state = _sqlstate(err)
        if state in _RETRYABLE_TX:
            return TransactionError(detail=detail)
        if err.connection_invalidated or state in _CONNECTION_STATES or state is None:
            return DatabaseConnectionError(detail=detail)
        return QueryError(detail=detail)
    if isinstance(err, (OSError, exc.DisconnectionError)):
        return DatabaseConnectionError(detail=detail)
    if isinstance(err, exc.SQLAlchemyError):
        return QueryError(detail=detail)
    return DatabaseError(detail=detail)


_DB_ERRORS = (exc.SQLAlchemyError, OSError)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session in one transaction: commit on success, roll back on error, typed errors out."""
    get_engine()
    assert _sessions is not None
    try:
        with tracing.child_span("db transaction"), _sessions() as session, session.begin():
            asked = time.perf_counter()
            session.connection()  # the checkout every transaction makes anyway, made here to time it
            waited = time.perf_counter() - asked
            if waited >= _SLOW_CHECKOUT_SECONDS:
                metrics.record(metrics.DB_CHECKOUT_WAIT, value=waited)
            yield session
    except _DB_ERRORS as err:
        raise translate_error(err) from err


def get_db() -> Iterator[Session]:
    """Generator form of `session_scope`, for code written in the dependency-injection style."""
    with session_scope() as session:
        yield session


def run_in_transaction(work: Callable[[Session], T], *, attempts: int = 3) -> T:
    """Run `work` in a fresh transaction, again on serialization failure or deadlock."""
    for attempt in range(1, attempts + 1):
        try:
            with session_scope() as session:
                return work(session)
        except TransactionError:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def pool_stats() -> dict[str, int]:
    """Pool occupancy right now: size, checked in/out, overflow, and the hard maximum."""
    pool = get_engine().pool
    assert isinstance(pool, QueuePool)
    settings = get_settings()
    return {
        "size": pool.size(),
        "checked_in": pool.checkedin(),
        "checked_out": pool.checkedout(),
        "overflow": max(0, pool.overflow()),
        "max_connections": settings.pool_size + settings.max_overflow,
    }


def check_health(timeout_ms: int = 2000) -> dict[str, Any]:
    """`SELECT 1` under a short statement timeout; raises ServiceUnavailableError when it fails."""
    try:
        with session_scope() as session:
            session.execute(text(f"SET LOCAL statement_timeout = {int(timeout_ms)}"))
            session.execute(text("SELECT 1"))
    except GenmediaError as err:
        raise ServiceUnavailableError("the database is not reachable", detail=str(err)) from err
    return {"database": "ok", "pool": pool_stats()}
