"""Verify the OIDC ID token Cloud Scheduler sends to `:tick`: Google's signature, issuer, audience, expiry.

google-auth checks the signature against the certificates at `certs_url` (Google's v1 endpoint:
`{kid: PEM x509}`) and `iat`/`exp` with the allowed clock skew; this module adds the issuer, the
audience, and optionally the service account. `id_token.verify_token` fetches the certificates on
every call, so the transport handed to it answers from a per-URL cache for as long as the endpoint's
`Cache-Control: max-age` allows (Google rotates keys with hours of overlap), and one fetch is shared
by callers that arrive together.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from google.auth import exceptions as google_exceptions
from google.auth import transport
from google.oauth2 import id_token

from shared.exceptions import ServiceUnavailableError, UnauthorizedError

__all__ = [
    "GOOGLE_CERTS_URL",
    "InvalidIdTokenError",
    "clear_certs_cache",
    "verify_scheduler_token",
]

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
GOOGLE_ISSUERS = frozenset({"https://accounts.google.com", "accounts.google.com"})
# Three base64url segments; anything else is refused before any certificate is fetched.
_JWT_RE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_BEARER_RE = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +(\S+)")
_MAX_TOKEN = 8192
_MAX_AGE_RE = re.compile(r"max-age=(\d+)")
_DEFAULT_CERTS_TTL, _MIN_CERTS_TTL, _MAX_CERTS_TTL = 3600.0, 60.0, 86_400.0
_FETCH_TIMEOUT = 5.0
# google-auth's failures for a token that is malformed, badly signed, expired or early.
_REJECTIONS = (google_exceptions.GoogleAuthError, ValueError, TypeError, KeyError, OverflowError)


class InvalidIdTokenError(UnauthorizedError):
    """A bearer token was sent but is not a valid Google ID token for this service."""

    reason = "ID_TOKEN_INVALID"
    default_message = "the ID token is not valid"


class _CachedResponse(transport.Response):
    """A fetched certificates document, replayed to google-auth until it goes stale."""

    def __init__(self, status: int, data: bytes, headers: Mapping[str, str]) -> None:
        self._status, self._data, self._headers = status, data, dict(headers)

    @property
    def status(self) -> int:
        return self._status

    @property
    def data(self) -> bytes:
        return self._data

    @property
    def headers(self) -> Mapping[str, str]:
        return self._headers


class _CachingRequest(transport.Request):
    """A google-auth transport that caches successful GETs per URL for their max-age."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, _CachedResponse]] = {}
        self._inner: transport.Request | None = None

    def __call__(self, url: str, method: str = "GET", body: bytes | None = None,
                 headers: Mapping[str, str] | None = None, timeout: float | None = None,
                 **kwargs: Any) -> transport.Response:
        # Held during the fetch on purpose: concurrent ticks wait for one fetch instead of each doing one.
        with self._lock:
            cached = self._cache.get(url)
            if method == "GET" and cached is not None and cached[0] > time.monotonic():
                return cached[1]
            response: transport.Response = self._transport()(url, method=method, body=body, headers=headers,
                                         timeout=timeout or _FETCH_TIMEOUT, **kwargs)
            if method == "GET" and response.status == 200:
                kept = _CachedResponse(response.status, bytes(response.data), dict(response.headers))
                self._cache[url] = (time.monotonic() + _ttl(kept.headers), kept)
            return response

    def _transport(self) -> transport.Request:
        if self._inner is None:
            from google.auth.transport.requests import Request  # imports requests: only when needed

            self._inner = Request()
        return self._inner

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


def _ttl(headers: Mapping[str, str]) -> float:
    control = next((v for k, v in headers.items() if k.lower() == "cache-control"), "")
    match = _MAX_AGE_RE.search(control)
    seconds = float(match.group(1)) if match else _DEFAULT_CERTS_TTL
    return min(_MAX_CERTS_TTL, max(_MIN_CERTS_TTL, seconds))


_certs_request = _CachingRequest()


def clear_certs_cache() -> None:
    """Forget cached certificates (tests)."""
    _certs_request.clear()


def _bearer_token(header: str | None) -> str:
    if header is None or (isinstance(header, str) and not header.strip()):
        raise UnauthorizedError("an ID token is required: send it as a Bearer token in the Authorization header")
    bearer = _BEARER_RE.fullmatch(header.strip()) if isinstance(header, str) else None
    if bearer is None or len(bearer.group(1)) > _MAX_TOKEN or not _JWT_RE.fullmatch(bearer.group(1)):
        raise InvalidIdTokenError("the Authorization header must be 'Bearer <ID token>'")
    return bearer.group(1)


def _decode(token: str, certs_url: str, clock_skew_seconds: int) -> dict[str, Any]:
    try:
        claims = id_token.verify_token(token, _certs_request, audience=None, certs_url=certs_url,
                                       clock_skew_in_seconds=clock_skew_seconds)
    except google_exceptions.TransportError as err:
        raise ServiceUnavailableError("cannot fetch Google's certificates to verify the ID token",
                                      detail=type(err).__name__) from None
    except _REJECTIONS as err:
        # google-auth's messages can quote the token: only the class name reaches the logs.
        expired = "expired" in str(err).lower()
        raise InvalidIdTokenError("the ID token has expired" if expired else None,
                                  detail=type(err).__name__) from None
    return dict(claims)


def _check_claims(claims: Mapping[str, Any], audience: str, expected_email: str | None) -> None:
    if claims.get("iss") not in GOOGLE_ISSUERS:
        raise InvalidIdTokenError("the ID token was not issued by Google", detail="issuer")
    if claims.get("aud") != audience:
        raise InvalidIdTokenError("the ID token is for another audience", detail="audience")
    if not isinstance(claims.get("exp"), int):
        raise InvalidIdTokenError(detail="exp is not an integer")
    if expected_email is not None and (
        claims.get("email") != expected_email or claims.get("email_verified") is not True
    ):
        raise InvalidIdTokenError("the ID token's service account is not allowed", detail="email")


def verify_scheduler_token(header: str | None, *, audience: str, certs_url: str = GOOGLE_CERTS_URL,
                           expected_email: str | None = None, clock_skew_seconds: int = 10) -> dict[str, Any]:
    """The verified claims of `Authorization: Bearer <Google ID token>`.

    Raises:
        UnauthorizedError: missing, malformed, badly signed, expired, wrong issuer, audience or
            service account (401; messages never quote the token).
        ServiceUnavailableError: Google's certificates could not be fetched (503, retryable).
    """
    if not audience:
        raise ValueError("audience must be set")
    token = _bearer_token(header)
    claims = _decode(token, certs_url, clock_skew_seconds)
    _check_claims(claims, audience, expected_email)
    return claims
