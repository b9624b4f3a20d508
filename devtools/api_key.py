"""`make api-key NAME=x [SCOPES=generate,batch]`: mint an API key and print it alone on the last line.

The key goes to DATABASE_URL, or, when that is unset, to the embedded development server under
.local/ (migrated first). Hashes need the server's pepper: API_KEY_PEPPER, or for the embedded
server a development pepper kept in .local/api-key-pepper, which `make run` must hand its functions.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devtools.migrate import ROOT, local_database_url, upgrade_to_head

LOCAL_PEPPER_FILE = ROOT / ".local" / "api-key-pepper"
DEFAULT_SCOPES = "generate,batch,schedule"


def local_pepper(path: Path = LOCAL_PEPPER_FILE) -> str:
    """The development pepper, created once (mode 0600) and shared by `make run` and `make api-key`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def mint_key(name: str, scopes: list[str], *, pepper: str, expires_in_days: float | None = None) -> str:
    """Create a key in the configured database and return it (the only time it is ever visible)."""
    from shared.apikeys import create_key
    from shared.database import session_scope

    expires_at = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
    with session_scope() as session:
        key, record = create_key(session, name, scopes, pepper=pepper, expires_at=expires_at)
    expiry = record.expires_at.isoformat() if record.expires_at else "never"
    print(f"api key {record.id} ({record.name}): scopes {','.join(sorted(record.scopes))},"  # noqa: T201
          f" expires {expiry}", file=sys.stderr)
    return key


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make api-key", description=__doc__.splitlines()[0])
    parser.add_argument("name", help="who or what the key is for")
    parser.add_argument("--scopes", default=DEFAULT_SCOPES,
                        help=f"comma-separated: generate, batch, schedule, admin (default {DEFAULT_SCOPES})")
    parser.add_argument("--expires-in-days", type=float, default=None, help="default: never expires")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `make api-key`."""
    from shared.exceptions import GenmediaError

    args = _parse_args(argv)
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    pepper = os.environ.get("API_KEY_PEPPER") or None
    url = os.environ.get("DATABASE_URL") or None
    if url is None and not os.environ.get("INSTANCE_CONNECTION_NAME"):
        print("DATABASE_URL is unset: using the embedded server under .local/", file=sys.stderr)  # noqa: T201
        upgrade_to_head(local_database_url())
        pepper = pepper or local_pepper()
    if pepper is None:
        print("genmedia: API_KEY_PEPPER: must be set to the functions' pepper", file=sys.stderr)  # noqa: T201
        return 2
    try:
        key = mint_key(args.name, scopes, pepper=pepper, expires_in_days=args.expires_in_days)
    except GenmediaError as err:
        print(f"genmedia: {err.message}", file=sys.stderr)  # noqa: T201
        return 2
    print(key)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
