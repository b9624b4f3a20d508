"""`Idempotency-Key`: the same key and body give the same resource; another body is a 409."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.exceptions import IdempotencyKeyReusedError, ValidationError
from shared.tables import IdempotencyKeyRow

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def parse_key(value: str | None) -> str | None:
    """The header's value when present, or ValidationError when it is not a printable token."""
    if value is None or value == "":
        return None
    if not _KEY.match(value):
        raise ValidationError.for_field("Idempotency-Key", "must be 1-255 printable ASCII characters")
    return value


def body_hash(body: Any) -> str:
    """A hash of the request body that ignores key order and whitespace."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def replayed(session: Session, *, owner_id: str, scope: str, key: str | None, digest: str,
             resource_id: str) -> str | None:
    """The resource an earlier request with this key made, or None (no key, or the key is now ours).

    Records the key for `resource_id` in the caller's transaction. Concurrent requests with one key
    serialise on its primary key: the second waits for the first transaction, then sees its row.
    Raises IdempotencyKeyReusedError when the key came with another body.
    """
    if key is None:
        return None
    inserted = session.execute(
        insert(IdempotencyKeyRow)
        .values(owner_id=owner_id, scope=scope, key=key, request_hash=digest, resource_id=resource_id)
        .on_conflict_do_nothing()
        .returning(IdempotencyKeyRow.resource_id)
    ).scalar_one_or_none()
    if inserted is not None:
        return None
    row = session.execute(
        select(IdempotencyKeyRow).where(
            IdempotencyKeyRow.owner_id == owner_id, IdempotencyKeyRow.scope == scope, IdempotencyKeyRow.key == key
        )
    ).scalar_one()
    if row.request_hash != digest:
        raise IdempotencyKeyReusedError()
    return row.resource_id


def release(session: Session, *, resource_id: str) -> None:
    """Forget the keys of a resource whose request failed transiently, so a retry runs again."""
    session.execute(delete(IdempotencyKeyRow).where(IdempotencyKeyRow.resource_id == resource_id))
