"""The transactional outbox: messages are committed with the change that causes them, then published.

If the process dies between commit and publish, the rows stay pending and the next request or tick
publishes them. A row can be published twice (die after publish, before marking), never zero times;
consumers are idempotent, so a duplicate has no second effect.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from shared import context
from shared.config import get_settings
from shared.database import session_scope
from shared.tables import OutboxRow
from shared.telemetry import tracing
from shared.trace import TraceContext

_log = logging.getLogger("genmedia.outbox")
_publisher: Any = None
_lock = threading.Lock()
LEASE_SECONDS = 60  # a claimed row is retried by others after this, if its publisher died


def topic_path(topic: str) -> str:
    """A full topic path from PUBSUB_BATCH_TOPIC, which may be a bare name."""
    if topic.startswith("projects/"):
        return topic
    return f"projects/{get_settings().google_cloud_project}/topics/{topic}"


def trace_attributes() -> dict[str, str]:
    """`googclient_traceparent` for the current trace, so the consumer's logs join this trace."""
    ctx = context.current()
    if not ctx.get("trace_id"):
        return {}
    trace = TraceContext(ctx["trace_id"], ctx.get("span_id"), bool(ctx.get("trace_sampled")))
    return {"googclient_traceparent": tracing.outgoing_traceparent(trace)}


def enqueue(session: Session, topic: str, payloads: list[dict[str, Any]]) -> None:
    """Add messages to the outbox inside the caller's transaction."""
    if not payloads:
        return
    attributes = trace_attributes()
    path = topic_path(topic)
    session.execute(
        insert(OutboxRow),
        [{"topic": path, "payload": p, "attributes": attributes} for p in payloads],
    )


def enqueue_with_attributes(session: Session, topic: str,
                            messages: list[tuple[dict[str, Any], dict[str, str]]]) -> None:
    """Add messages with their own attributes (each batch's trace, when items go out later than it)."""
    if not messages:
        return
    path = topic_path(topic)
    session.execute(insert(OutboxRow), [{"topic": path, "payload": p, "attributes": a} for p, a in messages])


def _get_publisher() -> Any:
    global _publisher
    if _publisher is None:
        with _lock:
            if _publisher is None:
                from google.cloud import pubsub_v1  # type: ignore[attr-defined]  # heavy: only when publishing

                settings = pubsub_v1.types.BatchSettings(max_messages=500, max_latency=0.01)
                _publisher = pubsub_v1.PublisherClient(batch_settings=settings)
    return _publisher


def reset_publisher() -> None:
    """Forget the client (tests that move the emulator)."""
    global _publisher
    _publisher = None


def _claim(limit: int) -> list[tuple[int, str, dict[str, Any], dict[str, str]]]:
    with session_scope() as session:
        due = (
            select(OutboxRow.id)
            .where(OutboxRow.published_at.is_(None), OutboxRow.next_attempt_at <= func.now())
            .order_by(OutboxRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = session.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_(due.scalar_subquery()))
            .values(attempts=OutboxRow.attempts + 1,
                    next_attempt_at=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, LEASE_SECONDS))
            .returning(OutboxRow.id, OutboxRow.topic, OutboxRow.payload, OutboxRow.attributes)
        ).all()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def _mark(published: list[int], failed: list[int]) -> None:
    with session_scope() as session:
        if published:
            session.execute(update(OutboxRow).where(OutboxRow.id.in_(published)).values(published_at=func.now()))
        if failed:
            backoff = func.least(5 * func.power(2, OutboxRow.attempts), 300)
            session.execute(
                update(OutboxRow).where(OutboxRow.id.in_(failed))
                .values(next_attempt_at=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, backoff))
            )


def _send(claimed: list[tuple[int, str, dict[str, Any], dict[str, str]]]) -> tuple[list[int], list[int]]:
    timeout = get_settings().pubsub_publish_timeout_seconds
    try:
        publisher = _get_publisher()
        futures = [
            (row_id, publisher.publish(topic, json.dumps(payload).encode(), **attributes))
            for row_id, topic, payload, attributes in claimed
        ]
    except Exception as err:  # noqa: BLE001 - no client (credentials, config): retry the rows later
        _log.warning("outbox publisher unavailable, will retry: %s", type(err).__name__)
        return [], [row_id for row_id, *_ in claimed]
    published, failed = [], []
    deadline = time.monotonic() + timeout  # one deadline for the whole lot, not one per message
    for row_id, future in futures:
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
            published.append(row_id)
        except Exception as err:  # noqa: BLE001 - any failure leaves the row for the next publisher
            _log.warning("outbox publish failed, will retry: %s", type(err).__name__, extra={"outbox_id": row_id})
            failed.append(row_id)
    return published, failed


def publish_pending(limit: int = 1000) -> int:
    """Publish due outbox rows (claimed with SKIP LOCKED); returns how many were published."""
    claimed = _claim(limit)
    if not claimed:
        return 0
    with tracing.child_span("pubsub publish", {"messaging.batch.message_count": len(claimed)}):
        published, failed = _send(claimed)
    _mark(published, failed)
    return len(published)


def pending_count() -> int:
    """Rows not yet published (readiness and tests)."""
    with session_scope() as session:
        pending = select(func.count(OutboxRow.id)).where(OutboxRow.published_at.is_(None))
        return int(session.execute(pending).scalar_one())
