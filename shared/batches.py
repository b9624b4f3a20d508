"""Batches: many generation requests recorded at once and fanned out through the outbox.

A batch's status is never stored: it is derived from its items' statuses in one aggregate query,
so items finishing at the same time can never leave it stale or racing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, field_serializer
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from shared.exceptions import NotFoundError
from shared.jobs import now, rfc3339, shown_id
from shared.media.request import GenerationRequest
from shared.outbox import enqueue, trace_attributes
from shared.quotas.admission import paced_models
from shared.quotas.estimate import estimate_completion
from shared.tables import BatchRow, JobRow
from shared.webhooks.deliveries import Subscription, WebhookStatus, subscribe

BatchStatus = Literal["queued", "running", "succeeded", "partially_failed", "failed"]


class BatchCounts(BaseModel):
    """How many items are in each status."""

    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0


class Batch(BaseModel):
    """A batch as the API shows it."""

    id: str
    status: BatchStatus
    total: int
    counts: BatchCounts
    schedule_id: str | None = None
    # While items are queued: when the last should have started, from its place in the queue and the
    # Vertex AI budget of its model (see shared.quotas).
    estimated_completion_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    webhook: WebhookStatus | None = None

    @field_serializer("created_at", "updated_at")
    def _rfc3339(self, value: datetime) -> str:
        return rfc3339(value)

    @field_serializer("estimated_completion_at")
    def _rfc3339_or_none(self, value: datetime | None) -> str | None:
        return rfc3339(value) if value is not None else None


def derive_status(counts: BatchCounts) -> BatchStatus:
    """queued until an item starts, running until all end, then by how they ended."""
    if counts.queued or counts.running:
        return "running" if counts.running or counts.succeeded or counts.failed else "queued"
    if counts.failed == 0:
        return "succeeded"
    return "failed" if counts.succeeded == 0 else "partially_failed"


@dataclass(frozen=True)
class NewBatch:
    """A batch to insert: its id, owner, resolved requests, and the schedule that fired it."""

    id: str
    owner_id: str
    requests: list[GenerationRequest]
    schedule_id: str | None = None
    webhook_url: str | None = None


def create_batches(session: Session, batches: list[NewBatch], *, topic: str) -> None:
    """Insert batches and one queued job per item in the caller's transaction, with one outbox message
    per item whose model is unpaced. Items of paced models wait in the queue: the caller runs
    `shared.quotas.queue.dispatch_waiting` after the commit, which publishes them at their budget's pace.

    A few multi-row statements whatever the number of batches, so a tick firing hundreds of schedules
    stays a short transaction.
    """
    trace = trace_attributes()
    session.execute(insert(BatchRow), [
        {"id": b.id, "owner_id": b.owner_id, "total": len(b.requests), "schedule_id": b.schedule_id,
         "trace_attributes": trace}
        for b in batches
    ])
    paced = paced_models(session, {str(r.model) for b in batches for r in b.requests})
    created = now()
    items = [
        {"id": f"{b.id}_{i:04d}", "owner_id": b.owner_id, "kind": r.kind, "model": r.model,
         "status": "queued", "request": r.model_dump(exclude_none=True), "batch_id": b.id, "item_index": i,
         "admitted_at": None if r.model in paced else created}
        for b in batches for i, r in enumerate(b.requests)
    ]
    session.execute(insert(JobRow), items)
    enqueue(session, topic, [
        {"batch_id": item["batch_id"], "item_id": item["id"], "request": item["request"]}
        for item in items if item["admitted_at"] is not None
    ])
    subscribe(session, [Subscription(b.owner_id, "batch", b.id, b.webhook_url) for b in batches if b.webhook_url])


def get_batch(session: Session, batch_id: str, *, owner_id: str | None = None) -> Batch:
    """The batch with its counts, or NotFoundError (also for another owner's batch)."""
    row = session.get(BatchRow, batch_id)
    if row is None or (owner_id is not None and row.owner_id != owner_id):
        raise NotFoundError(f"batch {shown_id(batch_id)} not found")
    grouped = session.execute(
        select(JobRow.status, func.count(), func.max(JobRow.updated_at))
        .where(JobRow.batch_id == batch_id).group_by(JobRow.status)
    ).all()
    counts = BatchCounts(**{status: n for status, n, _ in grouped})
    updated = max([row.updated_at, *[u for _, _, u in grouped if u is not None]])
    estimate = estimate_completion(session, row.id, row.owner_id, row.created_at) if counts.queued else None
    return Batch(id=row.id, status=derive_status(counts), total=row.total, counts=counts,
                 schedule_id=row.schedule_id, estimated_completion_at=estimate, created_at=row.created_at,
                 updated_at=updated)
