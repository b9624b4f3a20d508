"""Short-lived, tamper-proof tokens: an HMAC over a purpose, an object and an expiry.

One secret (API_KEY_PEPPER) serves many purposes, so each purpose gets its own key, derived with
HKDF-SHA256 (RFC 5869) under a purpose label: a download signature can never be replayed as a page
token or an upload URL, and no derived key reveals the pepper or another purpose's key. The purpose
is also inside the signed message, so even two purposes sharing a key could not be confused.
Verification compares in constant time, and checks the signature before the expiry, so a caller
learns nothing about a token it could not have made.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from functools import lru_cache

from shared.config import get_settings
from shared.exceptions import ForbiddenError

__all__ = ["ExpiredSignatureError", "InvalidSignatureError", "Signer", "derive_key", "signer_for"]

_SALT = b"genmedia signing v1"
_SIGNATURE_CHARS = 43  # 32 bytes of HMAC-SHA256 in unpadded base64


class InvalidSignatureError(ForbiddenError):
    """The link or token was changed, made for something else, or not made by us: ask for a new one."""

    reason = "SIGNATURE_INVALID"
    default_message = "the link is not valid; request the resource again for a fresh one"


class ExpiredSignatureError(ForbiddenError):
    """The link or token is past its expiry: request the resource again for a fresh one."""

    reason = "SIGNATURE_EXPIRED"
    default_message = "the link has expired; request the resource again for a fresh one"


def derive_key(secret: bytes, purpose: str) -> bytes:
    """HKDF-SHA256 (extract, then one expand block) of `secret` for `purpose`: 32 bytes."""
    prk = hmac.new(_SALT, secret, hashlib.sha256).digest()
    return hmac.new(prk, purpose.encode() + b"\x01", hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class Signer:
    """Signs and verifies `(object, expires_at)` pairs for one purpose."""

    def __init__(self, secret: bytes | str, purpose: str) -> None:
        if not purpose or "\n" in purpose:
            raise ValueError("purpose must be a non-empty single-line label")
        raw = secret.encode() if isinstance(secret, str) else secret
        self.purpose = purpose
        self._key = derive_key(raw, purpose)

    def _mac(self, obj: str, expires_at: int) -> bytes:
        message = f"{self.purpose}\n{expires_at}\n{obj}".encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def sign(self, obj: str, expires_at: int) -> str:
        """The signature of `obj` valid until `expires_at` (Unix seconds), URL-safe base64."""
        return _b64(self._mac(obj, int(expires_at)))

    def verify(self, obj: str, expires_at: int, signature: str, *, now: float | None = None) -> None:
        """Return if `signature` is ours for this object and expiry and it has not expired; else 403."""
        # Compared as canonical text, not decoded bytes: base64 has several spellings of the same bytes
        # (the last character's spare bits), and a link with one character changed must not pass.
        if not signature.isascii() or len(signature) != _SIGNATURE_CHARS:
            raise InvalidSignatureError()
        if not hmac.compare_digest(signature, self.sign(obj, int(expires_at))):
            raise InvalidSignatureError()
        if (time.time() if now is None else now) >= expires_at:
            raise ExpiredSignatureError()


@lru_cache(maxsize=16)
def _cached(secret: str, purpose: str) -> Signer:
    return Signer(secret, purpose)


def signer_for(purpose: str) -> Signer | None:
    """The signer of this process for `purpose`, keyed from API_KEY_PEPPER; None where it is unset
    (the batch function checks no keys and mints no links)."""
    pepper = get_settings().api_key_pepper
    if pepper is None:
        return None
    return _cached(pepper.get_secret_value(), purpose)
