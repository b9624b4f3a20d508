"""Traces with OpenTelemetry: a span per request and event, child spans for the work inside them.

Nothing here imports OpenTelemetry until a request or event arrives whose inbound trace is sampled
while `TRACE_EXPORTER` is not `none`, so a cold start never pays for the SDK and an unsampled request
pays one settings lookup. Spans continue the inbound trace (`traceparent`, `X-Cloud-Trace-Context`,
the Pub/Sub attribute), so Cloud Trace shows a batch's items under the request that submitted them,
and every log line written inside a span carries that span's id (`shared.context.span_scope`).

Spans carry names, routes, models and status codes, never messages or exceptions: the SDK's
exception events would copy text that may hold what a client sent into Cloud Trace, unmasked.
"""

from __future__ import annotations

import os
import secrets
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from shared import context
from shared.config import get_settings
from shared.trace import TraceContext

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

__all__ = ["child_span", "entry_span", "finish_request", "outgoing_traceparent", "reset", "use_exporter"]

Attributes = Mapping[str, str | int | float | bool]

_lock = threading.Lock()
_provider: TracerProvider | None = None
_tracer: Tracer | None = None
_exporter: SpanExporter | None = None  # set by use_exporter (tests), wins over TRACE_EXPORTER


def use_exporter(exporter: SpanExporter) -> None:
    """Send every span to `exporter` whatever TRACE_EXPORTER says (tests: the SDK's in-memory one)."""
    global _exporter
    reset()
    _exporter = exporter


def reset() -> None:
    """Forget the provider and any exporter set by `use_exporter` (tests, between cases)."""
    global _provider, _tracer, _exporter
    with _lock:
        if _provider is not None:
            _provider.shutdown()
        _provider, _tracer, _exporter = None, None, None


def _enabled() -> bool:
    return _exporter is not None or get_settings().trace_exporter != "none"


def _get_tracer() -> Tracer:
    global _provider, _tracer
    if _tracer is None:
        with _lock:
            if _tracer is None:
                _provider = _build_provider()
                _tracer = _provider.get_tracer("genmedia")
    return _tracer


def _build_provider() -> TracerProvider:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

    settings = get_settings()
    service = os.environ.get("K_SERVICE") or os.environ.get("FUNCTION_TARGET") or "genmedia"
    # Every span we start has a parent: the inbound one (remote) or ours. ParentBased keeps its decision.
    provider = TracerProvider(sampler=ParentBased(root=ALWAYS_OFF),
                              resource=Resource.create({"service.name": service}))
    if _exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
    elif settings.trace_exporter == "gcp":
        from opentelemetry.exporter.cloud_trace import CloudTraceSpanExporter

        # Batched in a background thread: no request waits on Cloud Trace's API.
        exporter = CloudTraceSpanExporter(project_id=settings.google_cloud_project)  # type: ignore[no-untyped-call]
        provider.add_span_processor(BatchSpanProcessor(exporter))
    else:
        # stderr, one JSON object per span: stdout carries log lines only.
        console = ConsoleSpanExporter(out=sys.stderr, formatter=_one_line)
        provider.add_span_processor(SimpleSpanProcessor(console))
    return provider


def _one_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + "\n"


def _hex_id(span: Span) -> str:
    return f"{span.get_span_context().span_id:016x}"


@contextmanager
def entry_span(name: str, trace: TraceContext | None, *, consumer: bool = False,
               attributes: Attributes | None = None) -> Iterator[Span | None]:
    """The span of one request (or, `consumer`, one Pub/Sub message) continuing `trace`.

    Yields None, and loads nothing, unless the inbound trace is sampled and tracing is on.
    """
    if trace is None or not trace.sampled or not _enabled():
        yield None
        return
    from opentelemetry import trace as otel

    parent = otel.NonRecordingSpan(otel.SpanContext(
        trace_id=int(trace.trace_id, 16),
        # X-Cloud-Trace-Context may name no span: the trace still joins, under a stand-in parent.
        span_id=int(trace.span_id or secrets.token_hex(8), 16),
        is_remote=True,
        trace_flags=otel.TraceFlags(otel.TraceFlags.SAMPLED),
    ))
    kind = otel.SpanKind.CONSUMER if consumer else otel.SpanKind.SERVER
    with _get_tracer().start_as_current_span(
        name, context=otel.set_span_in_context(parent), kind=kind, attributes=attributes,
        record_exception=False,
    ) as span, context.span_scope(_hex_id(span)):
        yield span


@contextmanager
def child_span(name: str, attributes: Attributes | None = None) -> Iterator[None]:
    """A span for work inside the current one (a transaction, a Vertex call, a publish, a webhook).

    Costs one check when no span is being recorded here, which is every unsampled request.
    """
    tracer = _tracer
    if tracer is None or context.active_span_id() is None:
        yield
        return
    with tracer.start_as_current_span(name, attributes=attributes, record_exception=False) as span, \
            context.span_scope(_hex_id(span)):
        yield


def finish_request(span: Span | None, route: str, status: int) -> None:
    """Name the request's span after its route (low cardinality) and record the status it answered."""
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    span.update_name(route)
    span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


def outgoing_traceparent(trace: TraceContext) -> str:
    """The `traceparent` a message published now should carry: the active span as its parent."""
    active = context.active_span_id()
    if active is None:
        return trace.to_traceparent()
    return f"00-{trace.trace_id}-{active}-{'01' if trace.sampled else '00'}"
