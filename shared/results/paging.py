"""AIP-158 page tokens for keyset pagination: opaque, tamper-proof, and bound to the caller and filter.

A token holds the position where the previous page stopped (`created_at`, `id` of its last row) and an
expiry, signed (purpose `page-token`) together with the owner and the list's filter. A token edited,
forged, taken from another caller or replayed against another filter is a 400 naming `page_token`;
`page_size` may change between pages, as AIP-158 allows.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from datetime import datetime

from shared.exceptions import ValidationError
from shared.results.signing import ExpiredSignatureError, InvalidSignatureError, Signer, signer_for

__all__ = ["Cursor", "decode_page_token", "encode_page_token"]

PURPOSE = "page-token"
TOKEN_TTL_SECONDS = 86_400
_REASON = "PAGE_TOKEN_INVALID"


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the newest-first order is (created_at DESC, id DESC)."""

    created_at: datetime
    id: str


def _signer() -> Signer:
    signer = signer_for(PURPOSE)
    assert signer is not None, "API_KEY_PEPPER is checked at start-up by every function that lists"
    return signer


def _bound(owner_id: str, binding: str, payload: str) -> str:
    return f"{owner_id}\n{binding}\n{payload}"


def encode_page_token(cursor: Cursor, *, owner_id: str, binding: str) -> str:
    """The token for the page after `cursor`, valid for this owner and filter (`binding`) for a day."""
    expires = int(time.time()) + TOKEN_TTL_SECONDS
    raw = json.dumps([cursor.created_at.isoformat(), cursor.id, expires], separators=(",", ":")).encode()
    payload = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return f"{payload}.{_signer().sign(_bound(owner_id, binding, payload), expires)}"


def _invalid(description: str) -> ValidationError:
    return ValidationError.for_field("page_token", description, reason=_REASON)


def decode_page_token(token: str, *, owner_id: str, binding: str) -> Cursor:
    """The cursor in `token`, or a 400 naming `page_token` (changed, foreign, other filter, or expired)."""
    payload, _, signature = token.partition(".")
    try:
        created, row_id, expires = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if not isinstance(row_id, str) or not isinstance(expires, int) or not isinstance(created, str):
            raise TypeError("not a cursor")
        _signer().verify(_bound(owner_id, binding, payload), expires, signature)
        return Cursor(datetime.fromisoformat(created), row_id)
    except ExpiredSignatureError:
        raise _invalid("has expired; start again from the first page") from None
    except (InvalidSignatureError, binascii.Error, ValueError, TypeError, UnicodeDecodeError, OverflowError):
        raise _invalid("is not a token from the previous page of this list") from None
