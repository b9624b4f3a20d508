"""Calling Vertex AI: retries with backoff inside one deadline, and its failures mapped onto our tree.

Why our own loop rather than google-genai's HttpRetryOptions: the SDK's tenacity retry has no overall
deadline (each attempt gets the full timeout, so 5 attempts can outlive the function), ignores
Retry-After, and retries read timeouts on `:predictLongRunning`, which can start (and bill) a second
video. Here every attempt gets what is left of one deadline, and a call that may already have taken
effect is retried only when the request provably never reached Vertex.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from shared.exceptions import GenmediaError, QuotaExceededError, UpstreamTimeoutError, VertexAIError
from shared.telemetry import metrics, tracing

T = TypeVar("T")
log = logging.getLogger(__name__)

_REDACTIONS = (
    (re.compile(r"(?i)bearer\s+\S+"), "Bearer [redacted]"),
    (re.compile(r"ya29\.[\w.-]+|AIza[\w-]{20,}|eyJ[\w-]+\.[\w-]+\.[\w-]+"), "[redacted]"),
    (re.compile(r"(?i)(token|key|secret|password)=\S+"), r"\1=[redacted]"),
    (re.compile(r"\b(?:https?|gs)://\S+"), "[url]"),
    (re.compile(r"projects/[^/\s]+"), "projects/[project]"),
    # Long base64 runs are media bytes or keys (e.g. a parser error quoting the response): never kept.
    (re.compile(r"[A-Za-z0-9+/_-]{40,}={0,2}"), "[data]"),
)


# Paced callers (batch items) put a refused call back in their queue instead of retrying into the quota.
_retry_quota: ContextVar[bool] = ContextVar("genmedia_retry_quota", default=True)


@contextmanager
def quota_refusals_returned() -> Iterator[None]:
    """Inside the block a Vertex 429 is raised at once (QuotaExceededError), never retried here."""
    token = _retry_quota.set(False)
    try:
        yield
    finally:
        _retry_quota.reset(token)


def sanitise(text: object, limit: int = 240) -> str:
    """An upstream message made safe to store and show: no secrets, URLs or project ids, one short line."""
    clean = " ".join(str(text or "").split())
    for pattern, replacement in _REDACTIONS:
        clean = pattern.sub(replacement, clean)
    return clean if len(clean) <= limit else clean[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded by attempts and by the caller's deadline."""

    initial_backoff: float = 0.25
    max_backoff: float = 4.0
    max_attempts: int = 5
    # Starting an attempt with less time than this left only turns a clear error into a timeout.
    min_attempt_seconds: float = 0.25

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` ("equal jitter")."""
        ceiling = min(self.max_backoff, self.initial_backoff * 2.0 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class _Failure:
    error: GenmediaError
    retry: bool
    retry_after: float | None = None


def call_with_retry(call: Callable[[float], T], *, deadline: float, policy: RetryPolicy,
                    rejected: type[VertexAIError], idempotent: bool, what: str) -> T:
    """`call(seconds_left)` until it succeeds, fails for good, or `deadline` (time.monotonic) comes.

    Args:
        rejected: the error for a request the model refused (its 4xx), e.g. ImagenGenerationError.
        idempotent: whether a request that may have reached Vertex can be sent again.
        what: names the call in logs, e.g. "imagen-4.0-generate-001:predict".
    """
    attempt = 0
    while True:
        attempt += 1
        left = deadline - time.monotonic()
        try:
            with tracing.child_span(f"vertex {what}", {"vertex.attempt": attempt}):
                return call(left)
        except Exception as exc:  # noqa: BLE001 - every failure is classified; unknown ones too
            failure = classify(exc, rejected=rejected, idempotent=idempotent)
            cause = exc
        if isinstance(failure.error, QuotaExceededError):
            metrics.record(metrics.VERTEX_QUOTA_REFUSED, model=what.split(":", 1)[0])
        wait = max(policy.backoff(attempt), failure.retry_after or 0.0)
        left = deadline - time.monotonic()
        if not failure.retry or attempt >= policy.max_attempts or wait + policy.min_attempt_seconds > left:
            if failure.retry_after is not None:
                failure.error.retry_after = failure.retry_after
            raise failure.error from cause
        reason = failure.error.reason
        log.warning(
            "vertex call failed; retrying",
            extra={"call": what, "attempt": attempt, "reason": reason, "wait_s": round(wait, 3)},
        )
        time.sleep(wait)


def classify(exc: BaseException, *, rejected: type[VertexAIError], idempotent: bool) -> _Failure:
    """What `exc` (raised by google-genai or its HTTP client) means for us, and whether to retry."""
    from google.genai import errors

    if isinstance(exc, errors.APIError):
        return _classify_status(exc, rejected)
    timeouts, not_sent, transport = _http_exceptions()
    if isinstance(exc, timeouts):
        detail = f"no answer in time ({type(exc).__name__})"
        return _Failure(UpstreamTimeoutError(detail=detail), retry=idempotent or isinstance(exc, not_sent))
    if isinstance(exc, transport):
        detail = f"connection failed ({type(exc).__name__})"
        return _Failure(VertexAIError(detail=detail), retry=idempotent or isinstance(exc, not_sent))
    # Credentials that cannot load or refresh, or a response the SDK could not parse: not transient.
    return _Failure(VertexAIError(detail=f"{type(exc).__name__}: {sanitise(exc, 160)}"), retry=False)


def _classify_status(exc: Any, rejected: type[VertexAIError]) -> _Failure:
    code = int(exc.code or 0)
    message = sanitise(exc.message or exc.status or "")
    detail = f"HTTP {code} {exc.status or ''}: {message}".strip()
    retry_after = _retry_after(exc)
    if code == 429:
        return _Failure(QuotaExceededError(detail=detail), retry=_retry_quota.get(), retry_after=retry_after)
    if code in (408, 504):
        return _Failure(UpstreamTimeoutError(detail=detail), retry=True, retry_after=retry_after)
    if code >= 500:
        return _Failure(VertexAIError(detail=detail), retry=True, retry_after=retry_after)
    if code in (401, 403):
        # Our credentials or IAM, never the caller's request: an outage to them, an alert to us.
        return _Failure(VertexAIError(detail=detail), retry=False)
    public = f"{rejected.default_message}: {message}" if message else None
    return _Failure(rejected(public, detail=detail), retry=False)


def _retry_after(exc: Any) -> float | None:
    """Seconds from a numeric Retry-After header, if the response had one."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        value = float(headers.get("retry-after", ""))
    except (TypeError, ValueError):
        return None
    return value if value >= 0 else None


def _http_exceptions() -> tuple[tuple[type[BaseException], ...], ...]:
    """(timeouts, never-sent, transport) exception classes of httpx and httpx2, whichever exist."""
    modules = []
    for name in ("httpx2", "httpx"):
        try:
            modules.append(__import__(name))
        except ImportError:
            continue
    timeouts = tuple(m.TimeoutException for m in modules)
    # The request never left: retrying cannot start a second generation.
    not_sent = tuple(c for m in modules for c in (m.ConnectError, m.ConnectTimeout, m.PoolTimeout))
    transport = tuple(m.TransportError for m in modules)
    return timeouts, not_sent, transport
