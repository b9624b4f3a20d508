"""Jobs in the database: creating them, reading them, and moving them between statuses.

Every transition is a guarded UPDATE (`WHERE status IN (...)`), so a redelivered message, a second
poller or a retried request can never move a job twice or out of a final status.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, field_serializer
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shared.exceptions import GenmediaError, NotFoundError
from shared.media.request import GenerationRequest, MediaOutput
from shared.tables import JobRow
from shared.telemetry import metrics
from shared.webhooks.deliveries import WebhookStatus, job_finished

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
STATUSES: tuple[Status, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE: tuple[Status, ...] = ("queued", "running")
FINISHED: tuple[Status, ...] = ("succeeded", "failed")


class JobError(BaseModel):
    """Why a job failed: a stable reason and a message safe to show its owner."""

    reason: str
    message: str


class Output(BaseModel):
    """One output as the API shows it: where it is stored, what it is, and a link anyone can GET until it
    expires (minted per response, never stored; null where no link can be made)."""

    uri: str
    mime_type: str
    url: str | None = None

    @classmethod
    def of(cls, stored: dict[str, str]) -> Output:
        """The view of a stored output, with a freshly minted link."""
        from shared.results.downloads import mint_url

        return cls(uri=stored["uri"], mime_type=stored["mime_type"], url=mint_url(stored["uri"]))


class Job(BaseModel):
    """A job as the API shows it."""

    id: str
    kind: Literal["image", "video"]
    model: str
    status: Status
    prompt: str
    outputs: list[Output]
    error: JobError | None
    custom_id: str | None = None
    batch_id: str | None = None
    schedule_id: str | None = None
    created_at: datetime
    updated_at: datetime
    webhook: WebhookStatus | None = None

    @field_serializer("created_at", "updated_at")
    def _rfc3339(self, value: datetime) -> str:
        return rfc3339(value)

    @classmethod
    def from_row(cls, row: JobRow) -> Job:
        """The public view of a row (never the operation name or internal counters)."""
        return cls(
            id=row.id, kind=row.kind, model=row.model, status=row.status,  # type: ignore[arg-type]
            prompt=str(row.request.get("prompt", "")),
            outputs=[Output.of(o) for o in row.outputs],
            error=JobError(**row.error) if row.error else None,
            custom_id=row.custom_id, batch_id=row.batch_id, schedule_id=row.schedule_id,
            created_at=row.created_at, updated_at=row.updated_at,
        )


def rfc3339(value: datetime) -> str:
    """UTC, millisecond precision, `Z` suffix: `2026-11-26T09:41:04.123Z`."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id(prefix: str) -> str:
    """A random id with a readable prefix (`gen_`, `bat_`, `sch_`)."""
    return f"{prefix}_{uuid.uuid4().hex}"


_OUR_ID = re.compile(r"^[a-z]{3}_[0-9a-f]{32}(?:_[0-9]{4})?$")


def shown_id(resource_id: str) -> str:
    """An id as a message may echo it: ours have one shape (`gen_<32 hex>`, items `bat_<hex>_0001`);
    anything else came from the client and may be anything, a secret included, so it is not echoed."""
    return resource_id if _OUR_ID.match(resource_id) else "(not an id of ours)"


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def create_job(
    session: Session, request: GenerationRequest, *, owner_id: str, job_id: str | None = None,
    batch_id: str | None = None, item_index: int | None = None, status: Status = "queued",
    lease_seconds: float | None = None,
) -> JobRow:
    """Insert a job for a validated, resolved request; `lease_seconds` for one that starts running
    now (if its function dies, the tick ends it when the lease runs out: see shared.leases)."""
    assert request.model is not None, "resolve the request before creating its job"
    lease = func.now() + func.make_interval(0, 0, 0, 0, 0, 0, lease_seconds) if lease_seconds else None
    row = JobRow(
        id=job_id or new_id("gen"), owner_id=owner_id, kind=request.kind, model=request.model,
        status=status, request=request.model_dump(exclude_none=True), outputs=[], error=None,
        batch_id=batch_id, item_index=item_index, attempts=0, poll_count=0, lease_until=lease,
    )
    session.add(row)
    session.flush()
    return row


def get_job(session: Session, job_id: str, *, owner_id: str | None = None) -> JobRow:
    """The job, or NotFoundError (also for another owner's job)."""
    row = session.get(JobRow, job_id)
    if row is None or (owner_id is not None and row.owner_id != owner_id):
        raise NotFoundError(f"generation {shown_id(job_id)} not found")
    return row


def _transition(session: Session, job_id: str, from_: tuple[Status, ...], **values: Any) -> JobRow | None:
    """The moved row, or None when the job was not in `from_` (finished, or moved by someone else).

    A job that ends here makes its webhook (or its batch's) due in this same transaction.
    """
    row = session.execute(
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.status.in_(from_))
        .values(updated_at=func.now(), **values)
        .returning(JobRow)
    ).scalar_one_or_none()
    if row is not None and row.status in FINISHED:
        metrics.record(metrics.JOB_FINISHED, value=(row.updated_at - row.created_at).total_seconds(),
                       model=row.model, kind=row.kind, status=row.status)
    if row is not None and row.status not in ACTIVE:
        job_finished(session, row)
    return row


def mark_running(session: Session, job_id: str, *, operation_name: str | None = None,
                 poll_after: timedelta | None = None) -> JobRow | None:
    """queued -> running (and record the video operation to poll)."""
    next_poll = now() + poll_after if poll_after is not None else None
    return _transition(session, job_id, ("queued", "running"), status="running",
                       operation_name=operation_name, next_poll_at=next_poll)


def mark_succeeded(session: Session, job_id: str, outputs: list[MediaOutput]) -> JobRow | None:
    """running/queued -> succeeded with its outputs; False if it had already finished."""
    return _transition(session, job_id, ACTIVE, status="succeeded",
                       outputs=[o.model_dump() for o in outputs], next_poll_at=None)


def mark_failed(session: Session, job_id: str, error: GenmediaError | JobError) -> JobRow | None:
    """running/queued -> failed with a reason; False if it had already finished."""
    record = error.to_record() if isinstance(error, GenmediaError) else error.model_dump()
    return _transition(session, job_id, ACTIVE, status="failed", error=record, next_poll_at=None)


def _next_poll(base: float, cap: float) -> Any:
    """now() + min(base * 1.5^polls, cap) seconds: polls back off per job, in one statement."""
    seconds = func.least(base * func.power(1.5, JobRow.poll_count), cap)
    return func.now() + func.make_interval(0, 0, 0, 0, 0, 0, seconds)


def _due_videos() -> Any:
    return (JobRow.status == "running", JobRow.operation_name.is_not(None), JobRow.next_poll_at <= func.now())


def claim_video_poll(session: Session, job_id: str, *, base: float, cap: float) -> JobRow | None:
    """Take the right to poll one running video now; None if not due or another poller has it."""
    return session.execute(
        update(JobRow)
        .where(JobRow.id == job_id, *_due_videos())
        .values(next_poll_at=_next_poll(base, cap), poll_count=JobRow.poll_count + 1)
        .returning(JobRow)
    ).scalar_one_or_none()


def claim_due_videos(session: Session, *, limit: int, base: float, cap: float) -> list[JobRow]:
    """Running videos due for a poll, claimed with SKIP LOCKED so concurrent ticks split them."""
    due = select(JobRow.id).where(*_due_videos()).order_by(JobRow.next_poll_at).limit(limit)
    rows = session.execute(
        update(JobRow)
        .where(JobRow.id.in_(due.with_for_update(skip_locked=True).scalar_subquery()))
        .values(next_poll_at=_next_poll(base, cap), poll_count=JobRow.poll_count + 1)
        .returning(JobRow)
    ).scalars().all()
    return list(rows)


ClaimState = Literal["claimed", "finished", "busy", "missing"]


def claim_item(session: Session, job_id: str, *, lease_seconds: float,
               batch_id: str | None = None) -> tuple[ClaimState, int]:
    """Take a batch item for one delivery: (state, attempts so far including this one).

    `finished`: already final, or a video whose operation has started (a duplicate: ack it).
    `busy`: another delivery holds an unexpired lease (nack: it comes back later).
    `missing`: no such job, or (with `batch_id`) not an item of that batch.
    """
    lease = func.now() + func.make_interval(0, 0, 0, 0, 0, 0, lease_seconds)
    of_batch = (JobRow.batch_id == batch_id,) if batch_id is not None else ()
    attempts = session.execute(
        update(JobRow)
        .where(JobRow.id == job_id, *of_batch, JobRow.status.in_(ACTIVE), JobRow.operation_name.is_(None),
               (JobRow.lease_until.is_(None)) | (JobRow.lease_until < func.now()))
        .values(attempts=JobRow.attempts + 1, status="running", lease_until=lease, updated_at=func.now())
        .returning(JobRow.attempts)
    ).scalar_one_or_none()
    if attempts is not None:
        return "claimed", attempts
    row = session.get(JobRow, job_id)
    if row is None or (batch_id is not None and row.batch_id != batch_id):
        return "missing", 0
    if row.status not in ACTIVE or row.operation_name is not None:
        return "finished", row.attempts
    return "busy", row.attempts


def release_item(session: Session, job_id: str, *, refund_attempt: bool = False) -> None:
    """Give up the lease after a transient failure, so the redelivery can take the item at once."""
    values: dict[str, Any] = {"lease_until": None}
    if refund_attempt:
        values["attempts"] = JobRow.attempts - 1
    session.execute(update(JobRow).where(JobRow.id == job_id, JobRow.status == "running").values(**values))


def requeue_stale_items(session: Session, *, limit: int, queued_after_seconds: float) -> list[JobRow]:
    """Batch items whose delivery was lost: queued for too long, or leased by a delivery that died.

    Pub/Sub may have dead-lettered their messages (every redelivery met a down function or a held
    lease), so the caller publishes them again; a duplicate has no second effect. Their `updated_at`
    moves to now, so each is requeued at most once per interval.
    """
    # Items still waiting for their turn (shared.quotas: admitted_at unset) were never published.
    stale_queued = (JobRow.status == "queued") & JobRow.admitted_at.is_not(None) & (
        JobRow.updated_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, queued_after_seconds))
    dead_lease = (JobRow.status == "running") & (JobRow.lease_until < func.now())
    due = (
        select(JobRow.id)
        .where(JobRow.batch_id.is_not(None), JobRow.operation_name.is_(None), stale_queued | dead_lease)
        .order_by(JobRow.updated_at).limit(limit).with_for_update(skip_locked=True)
    )
    rows = session.execute(
        update(JobRow).where(JobRow.id.in_(due.scalar_subquery()))
        .values(updated_at=func.now(), lease_until=None)
        .returning(JobRow)
    ).scalars().all()
    return list(rows)
