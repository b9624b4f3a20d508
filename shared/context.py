"""Per-request context (request id, user, trace) in contextvars, so every log line can carry it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_context: ContextVar[dict[str, Any] | None] = ContextVar("genmedia_request_context", default=None)
# The span being recorded, apart from the bound fields: a span ending must not undo what was bound
# inside it (the user id of the request's access line, for one).
_active_span: ContextVar[str | None] = ContextVar("genmedia_active_span", default=None)


def current() -> dict[str, Any]:
    """The fields bound for the request or event being handled (empty outside one)."""
    return _context.get() or {}


def bind(**fields: Any) -> None:
    """Add fields to the current context; None values are dropped."""
    merged = {**current(), **{k: v for k, v in fields.items() if v is not None}}
    _context.set(merged)


def clear() -> None:
    """Forget everything bound; called at the start and end of every request and event."""
    _context.set(None)


@contextmanager
def scope(**fields: Any) -> Iterator[None]:
    """Bind fields for the duration of a block, then restore what was there before."""
    token = _context.set({**current(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def active_span_id() -> str | None:
    """The 16-hex id of the span being recorded here, if any (it wins over the inbound span id)."""
    return _active_span.get()


@contextmanager
def span_scope(span_id: str) -> Iterator[None]:
    """Make `span_id` the active span for the duration of a block."""
    token = _active_span.set(span_id)
    try:
        yield
    finally:
        _active_span.reset(token)
