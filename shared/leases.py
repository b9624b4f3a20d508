"""Leases on running jobs: whoever runs a job holds it for a while, and a job whose holder died ends.

A function can die inside a Vertex AI call (a timeout, an out-of-memory kill, a scale-down) and
leave its job `running` with nobody to finish it. Every job that starts running without an
operation to poll takes a lease as long as the Vertex deadline plus a margin: a batch item when its
delivery claims it, a single generation when its request creates it. When a lease ends without an
outcome, the tick takes over: batch items are published again (their request can be retried by
Pub/Sub's at-least-once delivery), single generations end `failed` with reason `INTERRUPTED` and
their Idempotency-Key is released, so a client retrying the same request runs it again.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from shared.jobs import JobError
from shared.tables import IdempotencyKeyRow, JobRow
from shared.webhooks.deliveries import generations_ended

__all__ = ["INTERRUPTED", "interrupt_abandoned_generations", "lease_expiry"]

INTERRUPTED = JobError(
    reason="INTERRUPTED",
    message="the generation was interrupted before it finished (nothing was produced); send the request again",
)


def lease_expiry(seconds: float) -> object:
    """`now() + seconds` on the database clock, the one every lease is compared with."""
    return func.now() + func.make_interval(0, 0, 0, 0, 0, 0, seconds)


def interrupt_abandoned_generations(session: Session, *, limit: int, unleased_after_seconds: float) -> list[str]:
    """End single generations whose lease ran out with no outcome: failed, INTERRUPTED, key released.

    Also those running with no lease at all for `unleased_after_seconds` (started by a version that
    took none). Videos whose operation started are polled instead, never interrupted. Returns their ids.
    """
    expired = JobRow.lease_until < func.now()
    unleased = JobRow.lease_until.is_(None) & (
        JobRow.updated_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, unleased_after_seconds))
    due = (
        select(JobRow.id)
        .where(JobRow.batch_id.is_(None), JobRow.status == "running", JobRow.operation_name.is_(None),
               expired | unleased)
        .order_by(JobRow.updated_at).limit(limit).with_for_update(skip_locked=True)
    )
    ids = list(session.execute(
        update(JobRow).where(JobRow.id.in_(due.scalar_subquery()), JobRow.status == "running")
        .values(status="failed", error=INTERRUPTED.model_dump(), lease_until=None, next_poll_at=None,
                updated_at=func.now())
        .returning(JobRow.id)
    ).scalars())
    if ids:
        session.execute(delete(IdempotencyKeyRow).where(IdempotencyKeyRow.resource_id.in_(ids)))
        generations_ended(session, ids, "failed")
    return ids
