"""API keys: minted once, stored only as a keyed hash, verified in constant time, scoped and revocable.

A key reads `gm_<key id>_<secret>`: `gm_` lets secret scanners spot a leaked one, the key id (12 hex)
is public and becomes the owner and `user_id`, the secret is `secrets.token_urlsafe(32)` (256 bits).
The table holds HMAC-SHA256(pepper, secret): the pepper is a server secret kept outside the database
(API_KEY_PEPPER), so a leaked table or backup alone cannot confirm a guessed secret; a slow password
hash would buy nothing against 256 random bits and cost every request.

Verified keys are cached in-process for `cache_seconds` (default 10 s): a revocation made on another
instance takes effect here within that time; one made on this instance takes effect at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.database import session_scope
from shared.exceptions import ForbiddenError, GenmediaError, UnauthorizedError, ValidationError
from shared.tables import ApiKeyRow

__all__ = [
    "SCOPES",
    "ApiKeyExpiredError",
    "ApiKeyRecord",
    "ApiKeyRevokedError",
    "InsufficientScopeError",
    "InvalidApiKeyError",
    "KeyLoader",
    "Principal",
    "clear_key_cache",
    "create_key",
    "load_key",
    "load_key_from_db",
    "parse_authorization",
    "presents_api_key",
    "revoke_key",
    "verify",
    "www_authenticate",
]

SCOPES = frozenset({"generate", "batch", "schedule", "admin"})
ANY_SCOPE = "any"  # a route any valid key may call (its own webhook secret)
KEY_PREFIX = "gm_"
_KEY_RE = re.compile(r"gm_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_BEARER_RE = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +(\S+)")
# Far longer than any key; refuse bigger headers before doing any work on them.
_MAX_HEADER = 256
_CACHE_MAX_ENTRIES = 4096
# Compared against when the key id is unknown, so that path does the same work as a wrong secret.
_DUMMY_HASH = hashlib.sha256(b"genmedia-unknown-key").hexdigest()
_REALM = 'Bearer realm="genmedia"'


class InvalidApiKeyError(UnauthorizedError):
    """A credential was sent but is not a key we know (malformed, unknown or wrong secret)."""

    reason = "API_KEY_INVALID"
    default_message = "the API key is not valid"


class ApiKeyRevokedError(ForbiddenError):
    """The key was revoked; ask for a new one."""

    reason = "API_KEY_REVOKED"
    default_message = "the API key was revoked"


class ApiKeyExpiredError(ForbiddenError):
    """The key is past its expiry; ask for a new one."""

    reason = "API_KEY_EXPIRED"
    default_message = "the API key has expired"


class InsufficientScopeError(ForbiddenError):
    """The key is valid but lacks the scope this route needs."""

    reason = "INSUFFICIENT_SCOPE"


@dataclass(frozen=True)
class ApiKeyRecord:
    """A stored key as the verifier needs it: never the secret, only its keyed hash."""

    id: str
    name: str
    scopes: frozenset[str]
    secret_hash: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key id owns resources and is logged as `user_id`."""

    key_id: str
    name: str
    scopes: frozenset[str]

    def has_scope(self, scope: str) -> bool:
        """True when the key holds `scope`, or `admin`, which implies every scope."""
        return scope in self.scopes or "admin" in self.scopes


KeyLoader = Callable[[str], ApiKeyRecord | None]


def _hash_secret(secret: str, pepper: str | bytes) -> str:
    key = pepper.encode() if isinstance(pepper, str) else pepper
    if not key:
        raise ValueError("API key pepper must not be empty")
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def _record(row: ApiKeyRow) -> ApiKeyRecord:
    return ApiKeyRecord(row.id, row.name, frozenset(row.scopes), row.secret_hash, row.created_at,
                        row.expires_at, row.revoked_at)


def _check_new_key(name: str, scopes: Iterable[str]) -> frozenset[str]:
    if not name.strip() or len(name) > 200:
        raise ValidationError.for_field("name", "must be 1 to 200 characters")
    wanted = frozenset(scopes)
    if not wanted or not wanted <= SCOPES:
        raise ValidationError.for_field("scopes", f"must be a non-empty subset of {sorted(SCOPES)}")
    return wanted


def create_key(session: Session, name: str, scopes: Iterable[str], *, pepper: str | bytes,
               expires_at: datetime | None = None) -> tuple[str, ApiKeyRecord]:
    """Mint and store a key; the full key is returned here once and never again."""
    wanted = _check_new_key(name, scopes)
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    row = ApiKeyRow(id=key_id, name=name, scopes=sorted(wanted), secret_hash=_hash_secret(secret, pepper),
                    expires_at=expires_at)
    session.add(row)
    session.flush()
    session.refresh(row)
    _cache.forget(key_id)  # this instance may have cached the id as unknown
    return f"{KEY_PREFIX}{key_id}_{secret}", _record(row)


def revoke_key(session: Session, key_id: str) -> bool:
    """Revoke a key (idempotent); False when no such key exists."""
    session.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
                    .values(revoked_at=datetime.now(UTC)))
    _cache.forget(key_id)
    return session.get(ApiKeyRow, key_id) is not None


def load_key(session: Session, key_id: str) -> ApiKeyRecord | None:
    """The stored key with this id, or None."""
    row = session.execute(select(ApiKeyRow).where(ApiKeyRow.id == key_id)).scalar_one_or_none()
    return None if row is None else _record(row)


def load_key_from_db(key_id: str) -> ApiKeyRecord | None:
    """A `KeyLoader` that opens its own short transaction, only on a cache miss."""
    with session_scope() as session:
        return load_key(session, key_id)


def presents_api_key(header: str | None) -> bool:
    """True when the header carries a bearer credential shaped like one of our keys (`gm_...`)."""
    match = _BEARER_RE.fullmatch(header.strip()) if isinstance(header, str) else None
    return match is not None and match.group(1).startswith(KEY_PREFIX)


def parse_authorization(header: str | None) -> tuple[str, str]:
    """Split `Bearer gm_<id>_<secret>` into (key id, secret); messages never echo the header."""
    if header is None or (isinstance(header, str) and not header.strip()):
        raise UnauthorizedError("an API key is required: send it as a Bearer token in the Authorization header")
    if not isinstance(header, str) or len(header) > _MAX_HEADER:
        raise InvalidApiKeyError("the Authorization header must be 'Bearer <api key>'")
    bearer = _BEARER_RE.fullmatch(header.strip())
    if bearer is None:
        raise InvalidApiKeyError("the Authorization header must be 'Bearer <api key>'")
    key = _KEY_RE.fullmatch(bearer.group(1))
    if key is None:
        raise InvalidApiKeyError()
    return key.group(1), key.group(2)


class _KeyCache:
    """A bounded LRU of looked-up key ids -> stored record, or None for an id that does not exist.

    Unknown ids and wrong secrets are cached alike (the secret is checked on every request, never
    cached), so neither costs a database lookup per attempt and both take the same time.
    """

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[ApiKeyRecord | None, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key_id: str) -> tuple[bool, ApiKeyRecord | None]:
        """(found, record): found is False when the id must be looked up."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key_id)
            if entry is None or entry[1] <= now:
                return False, None
            self._entries.move_to_end(key_id)
        return True, entry[0]

    def put(self, key_id: str, record: ApiKeyRecord | None, ttl: float) -> None:
        with self._lock:
            self._entries[key_id] = (record, time.monotonic() + ttl)
            self._entries.move_to_end(key_id)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def forget(self, key_id: str) -> None:
        with self._lock:
            self._entries.pop(key_id, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_cache = _KeyCache(_CACHE_MAX_ENTRIES)


def clear_key_cache() -> None:
    """Forget every cached key (tests, and after revoking keys in bulk)."""
    _cache.clear()


def _authenticate(source: Session | KeyLoader, key_id: str, secret_hash: str,
                  cache_seconds: float) -> ApiKeyRecord:
    found, record = _cache.get(key_id) if cache_seconds > 0 else (False, None)
    if not found:
        record = load_key(source, key_id) if isinstance(source, Session) else source(key_id)
        if cache_seconds > 0:
            _cache.put(key_id, record, cache_seconds)
    expected = record.secret_hash if record is not None else _DUMMY_HASH
    if not hmac.compare_digest(expected, secret_hash) or record is None:
        raise InvalidApiKeyError()
    return record


def verify(source: Session | KeyLoader, header: str | None, scope: str, *, pepper: str | bytes,
           cache_seconds: float = 10.0, now: datetime | None = None) -> Principal:
    """Authenticate the Authorization header and authorise `scope`.

    Raises:
        UnauthorizedError: missing header (UnauthorizedError), or malformed, unknown or wrong key
            (InvalidApiKeyError), all 401.
        ForbiddenError: revoked, expired, or lacking `scope` (403, with a specific reason).
    """
    if scope not in SCOPES and scope != ANY_SCOPE:
        raise ValueError(f"unknown scope {scope!r}")
    key_id, secret = parse_authorization(header)
    record = _authenticate(source, key_id, _hash_secret(secret, pepper), cache_seconds)
    if record.revoked_at is not None:
        raise ApiKeyRevokedError()
    if record.expires_at is not None and record.expires_at <= (now or datetime.now(UTC)):
        raise ApiKeyExpiredError()
    principal = Principal(record.id, record.name, record.scopes)
    if scope != ANY_SCOPE and not principal.has_scope(scope):
        raise InsufficientScopeError(f"the API key lacks the '{scope}' scope this route needs",
                                     metadata={"required_scope": scope})
    return principal


def www_authenticate(err: GenmediaError) -> str | None:
    """The RFC 6750 `WWW-Authenticate` value for an auth error (None when it needs none)."""
    if isinstance(err, InsufficientScopeError):
        return f'{_REALM}, error="insufficient_scope", scope="{err.metadata.get("required_scope", "")}"'
    if isinstance(err, InvalidApiKeyError):
        return f'{_REALM}, error="invalid_token"'
    if isinstance(err, UnauthorizedError):
        return _REALM
    return None
