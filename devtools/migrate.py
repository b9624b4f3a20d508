"""`make migrate`: apply Alembic migrations to DATABASE_URL (or the local embedded server)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL_PGDATA = ROOT / ".local" / "pgdata"


def upgrade_to_head(database_url: str | None = None) -> None:
    """Migrate the database at `database_url` (default: the configured one) to head."""
    from alembic import command
    from alembic.config import Config

    from shared import config, database

    if database_url is not None:
        os.environ["DATABASE_URL"] = database_url
        config.get_settings.cache_clear()
        database.dispose_engine()
    command.upgrade(Config(str(ROOT / "alembic.ini")), "head")


def local_database_url() -> str:
    """Start (or reuse) the embedded server under .local/ and return the `genmedia` database URL."""
    from devtools.local_postgres import LocalPostgres

    return LocalPostgres(LOCAL_PGDATA).create_database("genmedia")


def main() -> int:
    """Entry point of `make migrate`."""
    url = os.environ.get("DATABASE_URL") or None
    if url is None and not os.environ.get("INSTANCE_CONNECTION_NAME"):
        url = local_database_url()
        print("DATABASE_URL is unset: migrating the embedded server under .local/", file=sys.stderr)  # noqa: T201
    upgrade_to_head(url)
    print("migrations: at head", file=sys.stderr)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
