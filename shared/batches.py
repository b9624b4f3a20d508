"""Batches: many generation requests recorded at once and fanned out through the outbox.

A batch's status is never stored: it is derived from its items' statuses in one aggregate query,
so items finishing at the same time can never leave it stale or racing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_serializer
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from shared.exceptions import NotFoundError, ValidationError
from shared.jobs import now, rfc3339, shown_id
from shared.media.request import GenerationRequest
from shared.outbox import enqueue, trace_attributes
from shared.quotas.admission import paced_models
from shared.quotas.estimate import estimate_completion
from shared.tables import BatchRow, JobRow
from shared.webhooks.deliveries import Subscription, WebhookStatus, subscribe

BatchStatus = Literal["queued", "running", "succeeded", "partially_failed", "failed", "cancelled"]
CUSTOM_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"


class BatchItem(GenerationRequest):
    """A generation request inside a batch (or a schedule's `requests`), with the caller's own id for it."""

    custom_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=CUSTOM_ID_PATTERN,
                                  description="Your id for this item, unique within the batch: "
                                              "1-64 of A-Z a-z 0-9 . _ : -")

    def request(self) -> GenerationRequest:
        """The generation request alone (custom_id is stored beside it, never inside)."""
        return GenerationRequest.model_validate(self.model_dump(exclude={"custom_id"}, exclude_none=True))


def split_items(items: list[BatchItem], prefix: str = "items") -> tuple[list[GenerationRequest], list[str | None]]:
    """Requests and custom ids of batch items; a repeated custom_id is a 400 naming the repeat."""
    seen: set[str] = set()
    for index, item in enumerate(items):
        if item.custom_id is not None:
            if item.custom_id in seen:
                raise ValidationError.for_field(f"{prefix}[{index}].custom_id", "must be unique within the batch")
            seen.add(item.custom_id)
    return [item.request() for item in items], [item.custom_id for item in items]


class BatchCounts(BaseModel):
    """How many items are in each status."""

    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0


class BatchResults(BaseModel):
    """The results file of a finished batch: where it is stored, and a link anyone can GET until it expires."""

    uri: str
    url: str | None = None


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
    results: BatchResults | None = None
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
    """queued until an item starts, running until all end, then by how they ended: `cancelled` when every
    item that did not succeed or fail was cancelled (and some were)."""
    if counts.queued or counts.running:
        started = counts.running or counts.succeeded or counts.failed or counts.cancelled
        return "running" if started else "queued"
    if counts.cancelled:
        return "cancelled"
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
    custom_ids: list[str | None] | None = None


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
         "admitted_at": None if r.model in paced else created,
         "custom_id": b.custom_ids[i] if b.custom_ids else None, "schedule_id": b.schedule_id}
        for b in batches for i, r in enumerate(b.requests)
    ]
    session.execute(insert(JobRow), items)
    enqueue(session, topic, [
        {"batch_id": item["batch_id"], "item_id": item["id"], "request": item["request"]}
        for item in items if item["admitted_at"] is not None
    ])
    subscribe(session, [Subscription(b.owner_id, "batch", b.id, b.webhook_url) for b in batches if b.webhook_url])


def item_counts(session: Session, batch_ids: list[str]) -> dict[str, tuple[BatchCounts, datetime | None]]:
    """Per batch: its items' counts by status and when an item last changed, in one grouped query."""
    grouped = session.execute(
        select(JobRow.batch_id, JobRow.status, func.count(), func.max(JobRow.updated_at))
        .where(JobRow.batch_id.in_(batch_ids)).group_by(JobRow.batch_id, JobRow.status)
    ).all()
    found: dict[str, tuple[dict[str, int], datetime | None]] = {}
    for batch_id, status, count, updated in grouped:
        counts, last = found.setdefault(str(batch_id), ({}, None))
        counts[status] = count
        found[str(batch_id)] = (counts, max(filter(None, (last, updated)), default=None))
    return {batch_id: (BatchCounts(**counts), last) for batch_id, (counts, last) in found.items()}


def to_batch(row: BatchRow, counts: BatchCounts, last_update: datetime | None,
             estimate: datetime | None = None) -> Batch:
    """The API view of a batch row with its counts (and a fresh link to its results file)."""
    results = None
    if row.results_uri and row.results_written_at is not None:
        from shared.results.downloads import mint_url

        results = BatchResults(uri=row.results_uri, url=mint_url(row.results_uri))
    updated = max(row.updated_at, last_update) if last_update is not None else row.updated_at
    return Batch(id=row.id, status=derive_status(counts), total=row.total, counts=counts,
                 schedule_id=row.schedule_id, results=results, estimated_completion_at=estimate,
                 created_at=row.created_at, updated_at=updated)


def get_batch(session: Session, batch_id: str, *, owner_id: str | None = None) -> Batch:
    """The batch with its counts, or NotFoundError (also for another owner's batch)."""
    row = get_batch_row(session, batch_id, owner_id=owner_id)
    counts, last_update = item_counts(session, [batch_id]).get(batch_id, (BatchCounts(), None))
    estimate = estimate_completion(session, row.id, row.owner_id, row.created_at) if counts.queued else None
    return to_batch(row, counts, last_update, estimate)


def get_batch_row(session: Session, batch_id: str, *, owner_id: str | None = None,
                  lock: bool = False) -> BatchRow:
    """The batch's row, or NotFoundError (also for another owner's batch)."""
    row = session.get(BatchRow, batch_id, with_for_update=lock)
    if row is None or (owner_id is not None and row.owner_id != owner_id):
        raise NotFoundError(f"batch {shown_id(batch_id)} not found")
    return row
