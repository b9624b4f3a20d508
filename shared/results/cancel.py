"""Cancelling: what has not started, and every running video, becomes `cancelled` and is never
generated or polled afterwards; an image already inside its Vertex AI call finishes as it would have.

One guarded UPDATE per call: a job already final (or an image mid-call) is left as it is, so a cancel
racing a finish, another cancel, a redelivery or a tick can never move a job twice. The batch function
acks deliveries of cancelled items (their status is final) and the tick polls only running videos.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, update
from sqlalchemy.orm import Session

from shared.batches import get_batch_row
from shared.jobs import get_job
from shared.tables import JobRow
from shared.webhooks.deliveries import batch_progressed, job_finished

__all__ = ["CANCELLED_ERROR", "cancel_batch_items", "cancel_job"]

CANCELLED_ERROR = {"reason": "CANCELLED", "message": "cancelled by its owner before it finished"}


def _cancellable() -> Any:
    return (JobRow.status == "queued") | ((JobRow.status == "running") & (JobRow.kind == "video"))


def _cancel(session: Session, *where: Any) -> list[str]:
    return list(session.execute(
        update(JobRow).where(*where, _cancellable())
        .values(status="cancelled", error=CANCELLED_ERROR, next_poll_at=None, lease_until=None,
                updated_at=func.now())
        .returning(JobRow.id)
    ).scalars())


def cancel_job(session: Session, job_id: str, *, owner_id: str) -> JobRow:
    """Cancel one of the owner's jobs if it can be; the row after (404 for another owner's)."""
    get_job(session, job_id, owner_id=owner_id)
    cancelled = _cancel(session, JobRow.id == job_id)
    session.expire_all()
    row = get_job(session, job_id, owner_id=owner_id)
    if cancelled:
        job_finished(session, row)  # generation.cancelled, or the batch's event if this was its last item
    return row


def cancel_batch_items(session: Session, batch_id: str, *, owner_id: str) -> int:
    """Cancel every item of the owner's batch that can be; how many were (404 for another owner's)."""
    get_batch_row(session, batch_id, owner_id=owner_id)
    cancelled = _cancel(session, JobRow.batch_id == batch_id)
    if cancelled:
        batch_progressed(session, batch_id)  # batch.completed once nothing is queued or running
    return len(cancelled)
