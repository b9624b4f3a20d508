"""Inbound trace context: W3C `traceparent`, `X-Cloud-Trace-Context`, and Pub/Sub attributes."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_CLOUD_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/(\d{1,20}))?(?:;o=([01]))?$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


@dataclass(frozen=True)
class TraceContext:
    """One trace position: 32-hex trace id, 16-hex span id, and the sampling decision."""

    trace_id: str
    span_id: str | None
    sampled: bool

    def to_traceparent(self) -> str:
        """A W3C traceparent that continues this trace from a new child span."""
        flags = "01" if self.sampled else "00"
        return f"00-{self.trace_id}-{secrets.token_hex(8)}-{flags}"


def parse_traceparent(value: str | None) -> TraceContext | None:
    """A W3C `traceparent` header, or None when absent or malformed."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if not match:
        return None
    version, trace_id, span_id, flags = match.groups()
    if version == "ff" or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return TraceContext(trace_id, span_id, bool(int(flags, 16) & 1))


def parse_cloud_trace_context(value: str | None) -> TraceContext | None:
    """`X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=1` (span id decimal there, hex in logs)."""
    if not value:
        return None
    match = _CLOUD_TRACE.match(value.strip())
    if not match:
        return None
    trace_id, span, sampled = match.groups()
    if trace_id == _ZERO_TRACE:
        return None
    span_id = None
    if span is not None and 0 < int(span) < 2**64:
        span_id = f"{int(span):016x}"
    return TraceContext(trace_id.lower(), span_id, sampled == "1")


class Headers(Protocol):
    """Anything with `.get(name)`: a dict, or werkzeug's case-insensitive Headers."""

    def get(self, key: str, /) -> str | None: ...


def trace_from_headers(headers: Headers) -> TraceContext | None:
    """The inbound trace of an HTTP request: `traceparent` first, then `X-Cloud-Trace-Context`."""
    return parse_traceparent(headers.get("traceparent")) or parse_cloud_trace_context(
        headers.get("X-Cloud-Trace-Context")
    )


def trace_from_attributes(attributes: Mapping[str, str]) -> TraceContext | None:
    """The trace a publisher put on a Pub/Sub message."""
    return parse_traceparent(attributes.get("googclient_traceparent")) or parse_traceparent(
        attributes.get("traceparent")
    )
