"""Give each function's IAM database user read/write access to genmedia's tables, nothing more.

With DB_IAM_AUTH each function logs in as its own IAM user, which Cloud SQL creates with no
privileges at all. deploy.sh runs this after every migration, as the owner that ran the migration
(same environment: DATABASE_URL, or INSTANCE_CONNECTION_NAME + DB_USER + DB_NAME + DB_PASS): the
users get DML on every table and sequence, default privileges for tables added later by the same
owner, and no say over the schema or over Alembic's bookkeeping. Idempotent.

It needs the database settings and nothing else: not OUTPUT_BUCKET, not API_KEY_PEPPER, which only a
serving function needs (deploy.sh runs it from the deployer's shell, where neither is set).

Usage: python infra/scripts/grant_db_access.py USER [USER ...]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Cloud SQL names an IAM service-account user by its email without ".gserviceaccount.com".
_USER = re.compile(r"^[a-z0-9][a-z0-9._-]*@[a-z0-9.-]+$")


def grant_statements(user: str) -> list[str]:
    """The statements that let `user` read and write data, and only that."""
    if not _USER.match(user):
        raise ValueError(f"not an IAM database user name: {user!r}")
    role = '"' + user + '"'
    return [
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {role}",
        # Only migrations move the schema version.
        f"DO $$ BEGIN IF to_regclass('public.alembic_version') IS NOT NULL THEN "
        f"REVOKE INSERT, UPDATE, DELETE ON public.alembic_version FROM {role}; END IF; END $$",
    ]


def database_settings_problem() -> str | None:
    """One line naming what keeps us from reaching the database (never a value), or None."""
    sys.path.insert(0, str(ROOT))
    from pydantic import ValidationError

    from shared.config import describe_error, get_settings

    try:
        settings = get_settings()
    except ValidationError as exc:
        return describe_error(exc)
    if not settings.database_url and not settings.instance_connection_name:
        return "DATABASE_URL: must be set (or INSTANCE_CONNECTION_NAME with DB_USER and DB_NAME)"
    return None


def main(users: list[str]) -> int:
    if not users:
        print("usage: grant_db_access.py USER [USER ...]", file=sys.stderr)  # noqa: T201
        return 2
    try:
        statements = [s for user in users for s in grant_statements(user)]
    except ValueError as err:
        print(f"grant_db_access: {err}", file=sys.stderr)  # noqa: T201
        return 2
    problem = database_settings_problem()
    if problem:
        print(f"grant_db_access: configuration error: {problem}", file=sys.stderr)  # noqa: T201
        return 2
    from sqlalchemy import text

    from shared.database import get_engine

    with get_engine().begin() as connection:
        for statement in statements:
            connection.execute(text(statement))
    print(f"grant_db_access: {len(users)} user(s) can read and write the tables", file=sys.stderr)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
