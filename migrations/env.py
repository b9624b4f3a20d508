"""Alembic environment: one transaction under an advisory lock, so concurrent runs are safe."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from shared.database import get_engine

# Any fixed 64-bit number; every migrator takes the same transaction-scoped lock.
MIGRATION_LOCK_ID = 7_326_190_114


def run_migrations_online() -> None:
    """Apply pending migrations; a second concurrent run waits, then finds nothing to do."""
    with get_engine().connect() as connection:
        context.configure(connection=connection, transactional_ddl=True)
        with context.begin_transaction():
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; set DATABASE_URL")
run_migrations_online()
