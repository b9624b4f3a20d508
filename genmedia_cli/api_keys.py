"""`genmedia api-key create`: an operator command that mints a key straight in the database.

It does not call the API (no route mints keys, on purpose): it runs `make api-key`'s logic in this
process, so it needs what the functions have: DATABASE_URL (or the Cloud SQL variables) and
API_KEY_PEPPER. With neither DATABASE_URL nor INSTANCE_CONNECTION_NAME set, it uses the development
server under .local/ and its pepper, as `make run` does. The key is printed alone on the last line.
"""

from __future__ import annotations

import argparse
import os

from genmedia_cli.context import out, say
from genmedia_cli.errors import OK, TransportError, UsageError


def create_api_key(args: argparse.Namespace) -> int:
    """Mint a key with the given scopes; print it once, on stdout."""
    try:
        from devtools import api_key, migrate
        from shared.exceptions import GenmediaError
    except ImportError:
        raise UsageError("api-key create runs from a genmedia checkout (it needs the devtools and shared "
                         "packages, which only the project's own install has)") from None
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    pepper = os.environ.get("API_KEY_PEPPER") or None
    try:
        if not os.environ.get("DATABASE_URL") and not os.environ.get("INSTANCE_CONNECTION_NAME"):
            say("DATABASE_URL is unset: using the development server under .local/")
            migrate.upgrade_to_head(migrate.local_database_url())
            pepper = pepper or api_key.local_pepper()
        if pepper is None:
            raise UsageError("API_KEY_PEPPER: must be set to the pepper the functions use")
        key = api_key.mint_key(args.name, scopes, pepper=pepper, expires_in_days=args.expires_in_days)
    except GenmediaError as err:
        if err.retryable:
            raise TransportError(f"the database is unavailable: {err.message}") from None
        raise UsageError(err.message) from None
    out(key)
    return OK
