"""Send due webhook deliveries: claim, render, sign, POST to a checked address, record, log.

Used by the dispatcher (right after the commit that made a delivery due) and by the scheduling tick
(everything due: retries, and what a crash or a frozen instance left). Neither holds a transaction or
a connection across a POST: one short transaction claims a round of deliveries (with a lease) and
renders their bodies, the POSTs run in parallel on a small pool, one short transaction records them.

Outcomes: a 2xx is delivered; 410 Gone stops that delivery (failed); a URL that is no longer safe
(say its name now resolves to a private address) fails at once; anything else (3xx, 4xx, 5xx, 429,
timeouts, refused connections, DNS and TLS failures) is retried on the schedule in `deliveries`.
"""

from __future__ import annotations

import contextvars
import json
import logging
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.batches import get_batch
from shared.config import Settings, get_settings
from shared.database import session_scope
from shared.exceptions import NotFoundError
from shared.jobs import Job, get_job, rfc3339
from shared.tables import BatchRow, JobRow, WebhookDeliveryRow
from shared.telemetry import metrics, tracing
from shared.webhooks import deliveries, ssrf, transport
from shared.webhooks.signing import derive_secret, parse_versions, sign_headers

_log = logging.getLogger("genmedia.webhooks")
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
LEASE_MARGIN_SECONDS = 30.0


Result = deliveries.Attempted
WAVES = 4  # a round claims this many times the pool's size; its lease covers that many timeouts
# How long batch.completed waits for a results file another writer is finishing (then goes without).
RESULTS_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class _Prepared:
    delivery: WebhookDeliveryRow
    body: str | None  # None: the job or batch is gone


def _executor(size: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    if _pool is None or _pool_size != size:
        _pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="genmedia-webhook-send")
        _pool_size = size
    return _pool


def render(session: Session, delivery: WebhookDeliveryRow, jobs: dict[str, JobRow] | None = None) -> str:
    """The body: `{"type", "timestamp", "data"}`, data being the job or batch as GET shows it now.

    `jobs`: rows already read for this round (one query for all its generations).
    """
    if delivery.subject_kind == "generation":
        row = (jobs or {}).get(delivery.subject_id) or get_job(session, delivery.subject_id)
        data = Job.from_row(row).model_dump(mode="json", exclude={"webhook"})
    else:
        data = get_batch(session, delivery.subject_id).model_dump(mode="json", exclude={"webhook"})
    assert delivery.event_at is not None
    event = {"type": delivery.event_type, "timestamp": rfc3339(delivery.event_at), "data": data}
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def _claim(ids: list[str] | None, settings: Settings) -> list[_Prepared]:
    chunk = settings.webhook_send_concurrency * WAVES
    lease = settings.webhook_timeout_seconds * WAVES + LEASE_MARGIN_SECONDS
    prepared = []
    with session_scope() as session:
        claimed = deliveries.claim(session, ids=ids, limit=chunk, lease_seconds=lease)
    _write_results_files(claimed)
    with session_scope() as session:
        wanted = [d.subject_id for d in claimed if d.subject_kind == "generation"]
        jobs = {row.id: row for row in session.execute(select(JobRow).where(JobRow.id.in_(wanted))).scalars()}
        for delivery in claimed:
            try:
                prepared.append(_Prepared(delivery, render(session, delivery, jobs)))
            except NotFoundError:
                prepared.append(_Prepared(delivery, None))
    return prepared


def _write_results_files(claimed: list[WebhookDeliveryRow]) -> None:
    """batch.completed carries the batch's results file: write it first if nobody has (exactly once;
    a writer already at it finishes it, and the tick's sweep retries a failed one)."""
    from shared.results.results_file import try_write_results

    for delivery in claimed:
        if delivery.event_type != "batch.completed":
            continue
        try_write_results(delivery.subject_id)
        # Another writer (the batch's last finisher) may hold the file's lease: give it a moment.
        deadline = time.monotonic() + RESULTS_WAIT_SECONDS
        while not _results_written(delivery.subject_id) and time.monotonic() < deadline:
            time.sleep(0.1)


def _results_written(batch_id: str) -> bool:
    with session_scope() as session:
        written = session.execute(select(BatchRow.results_written_at).where(BatchRow.id == batch_id)).scalar()
    return written is not None


def _secrets(settings: Settings, owner_id: str) -> list[str]:
    assert settings.api_key_pepper is not None
    pepper = settings.api_key_pepper.get_secret_value()
    return [derive_secret(pepper, owner_id, v) for v in parse_versions(settings.webhook_secret_versions)]


def _attempt(item: _Prepared, settings: Settings, tls: ssl.SSLContext | None,
             resolve: ssrf.Resolver) -> Result:
    delivery = item.delivery
    if item.body is None:
        return Result(delivery.id, delivery.attempts, "failed", None, "SUBJECT_DELETED")
    allow = settings.webhook_allow_private
    try:
        target = ssrf.parse_url(delivery.url, allow_private=allow)
        addresses = ssrf.resolve_checked(target, allow_private=allow, resolve=resolve)
    except ssrf.UnsafeUrlError:
        return Result(delivery.id, delivery.attempts, "failed", None, "UNSAFE_TARGET")
    except OSError:
        return _retry(delivery, None, "DNS_FAILED", None)
    headers = sign_headers(_secrets(settings, delivery.owner_id), delivery.id, item.body)
    try:
        answer = transport.post(target, addresses, headers, item.body.encode(),
                                timeout=settings.webhook_timeout_seconds, tls=tls)
    except TimeoutError:
        return _retry(delivery, None, "TIMEOUT", None)
    except ssl.SSLError:
        return _retry(delivery, None, "TLS_FAILED", None)
    except OSError:
        return _retry(delivery, None, "CONNECTION_FAILED", None)
    if 200 <= answer.status < 300:
        return Result(delivery.id, delivery.attempts, "delivered", answer.status, None)
    if answer.status == 410:
        return Result(delivery.id, delivery.attempts, "failed", answer.status, "GONE")
    return _retry(delivery, answer.status, f"HTTP_{answer.status}", answer.retry_after)


def _traced_attempt(item: _Prepared, settings: Settings, tls: ssl.SSLContext | None,
                    resolve: ssrf.Resolver) -> Result:
    with tracing.child_span("webhook delivery", {"webhook.event_type": item.delivery.event_type or ""}):
        return _attempt(item, settings, tls, resolve)


def _retry(delivery: WebhookDeliveryRow, status: int | None, error: str, retry_after: float | None) -> Result:
    delay = deliveries.next_retry_delay(delivery.attempts, retry_after)
    if delay is None:
        return Result(delivery.id, delivery.attempts, "failed", status, error)
    return Result(delivery.id, delivery.attempts, "retry", status, error, delay)


def _record(results: list[Result]) -> None:
    with session_scope() as session:
        deliveries.record(session, results)


def _log_attempt(delivery: WebhookDeliveryRow, result: Result, started: float) -> None:
    """One line per attempt: never the URL's path or query, the body or a secret."""
    next_retry = None
    if result.delay is not None:
        next_retry = rfc3339(datetime.now(UTC) + timedelta(seconds=result.delay))
    level = logging.INFO if result.outcome == "delivered" else logging.WARNING
    if result.outcome != "delivered":
        metrics.record(metrics.WEBHOOK_FAILED, event_type=delivery.event_type, outcome=result.outcome,
                       reason=result.error or "UNKNOWN")
    _log.log(level, "webhook %s %s", delivery.event_type, result.outcome, extra={
        "event_type": delivery.event_type, "webhook_id": delivery.id, "subject_id": delivery.subject_id,
        "attempt": delivery.attempts, "outcome": result.outcome, "http_status": result.status,
        "error_reason": result.error, "next_retry_at": next_retry,
        "latency": f"{time.monotonic() - started:.3f}s",
    })


def deliver(ids: list[str] | None = None, *, tls: ssl.SSLContext | None = None,
            resolve: ssrf.Resolver = ssrf.system_resolve) -> list[Result]:
    """One round: claim due deliveries (these ids, or the most overdue), send them in parallel, record.

    `tls` and `resolve` exist for tests (a private CA, a name that resolves differently each time).
    """
    settings = get_settings()
    if settings.api_key_pepper is None:  # cannot sign here; a function that can (the tick) sends them
        return []
    prepared = _claim(ids, settings)
    if not prepared:
        return []
    started = time.monotonic()
    pool = _executor(settings.webhook_send_concurrency)
    # Each send runs in a copy of the caller's context: its span joins the caller's trace.
    sends = [(contextvars.copy_context(), item) for item in prepared]
    results = list(pool.map(lambda send: send[0].run(_traced_attempt, send[1], settings, tls, resolve), sends))
    _record(results)
    for item, result in zip(prepared, results, strict=True):
        _log_attempt(item.delivery, result, started)
    return results


def deliver_due(*, budget_seconds: float | None = None) -> int:
    """Send everything due, round after round, within a time budget (the tick); returns attempts made."""
    settings = get_settings()
    budget = budget_seconds if budget_seconds is not None else settings.webhook_tick_budget_seconds
    deadline = time.monotonic() + budget
    attempts = 0
    while time.monotonic() < deadline:
        results = deliver()
        attempts += len(results)
        if len(results) < settings.webhook_send_concurrency * WAVES:
            break
    return attempts

