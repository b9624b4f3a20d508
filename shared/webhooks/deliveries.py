"""The webhook outbox: one row per job or batch that has a webhook, moved along in the same
transactions as the work it reports on.

A row is written `waiting` with the job or batch. The transaction that finishes the job (or the last
item of the batch) turns it `pending` with its event type, so a crash after that commit still sends it
and a rolled-back finish sends nothing. Senders claim due rows with SKIP LOCKED and a lease (the same
`next_attempt_at`), and record each outcome guarded by the attempt number they claimed, so a sender
whose lease ran out cannot overwrite a newer attempt. The row's id is the `webhook-id`: the same on
every attempt, so receivers can deduplicate.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import event, exists, func, insert, select, text, update
from sqlalchemy.orm import Session

from shared.tables import JobRow, WebhookDeliveryRow
from shared.webhooks import dispatch

Delivery = WebhookDeliveryRow
SubjectKind = Literal["generation", "batch"]
# After failed attempt n, wait RETRY_DELAYS[n - 1] (the Standard Webhooks schedule: 5 s, 5 min, 30 min,
# 2 h, 5 h, 10 h, 10 h; about 27.6 hours in all), then give up. Each delay is jittered by +-10%.
RETRY_DELAYS = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
MAX_RETRY_AFTER = 86_400.0
_ACTIVE = ("queued", "running")


class WebhookStatus(BaseModel):
    """What GET shows of a job's or batch's webhook: pending until delivered or failed."""

    state: Literal["pending", "delivered", "failed"]
    attempts: int


@dataclass(frozen=True)
class Subscription:
    """A webhook to create with its job or batch."""

    owner_id: str
    subject_kind: SubjectKind
    subject_id: str
    url: str


def subscribe(session: Session, subscriptions: list[Subscription]) -> None:
    """Record webhooks, waiting, in the caller's transaction (one INSERT for all)."""
    if not subscriptions:
        return
    session.execute(insert(Delivery), [
        {"id": f"msg_{uuid.uuid4().hex}", "owner_id": s.owner_id, "subject_kind": s.subject_kind,
         "subject_id": s.subject_id, "url": s.url, "state": "waiting"}
        for s in subscriptions
    ])


def _make_due(session: Session, subject_id: str | list[str], event_type: str) -> list[str]:
    subjects = [subject_id] if isinstance(subject_id, str) else subject_id
    ids = list(session.execute(
        update(Delivery)
        .where(Delivery.subject_id.in_(subjects), Delivery.state == "waiting")
        .values(state="pending", event_type=event_type, event_at=func.now(), next_attempt_at=func.now(),
                updated_at=func.now())
        .returning(Delivery.id)
    ).scalars())
    _after_commit(session, ids)
    return ids


def job_finished(session: Session, job: JobRow) -> None:
    """In the transaction that finished `job`: make its event, or its batch's, due."""
    if job.batch_id is None:
        _make_due(session, job.id, f"generation.{job.status}")
    else:
        batch_progressed(session, job.batch_id)


def generations_ended(session: Session, job_ids: list[str], status: str) -> None:
    """In the transaction that ended these single generations at once (one statement for all)."""
    if job_ids:
        _make_due(session, job_ids, f"generation.{status}")


def batch_progressed(session: Session, batch_id: str) -> None:
    """Make `batch.completed` due if no item of the batch is queued or running any more.

    Items finishing at once each lock the waiting row first, then look: the last one to take the lock
    sees every other finish committed (each statement reads the latest commits), so exactly one of
    them fires, whatever the interleaving. Batches without a webhook cost one index probe.
    """
    waiting = session.execute(
        select(Delivery.id).where(Delivery.subject_id == batch_id, Delivery.state == "waiting").with_for_update()
    ).scalar_one_or_none()
    if waiting is None:
        return
    unfinished = session.execute(
        select(exists().where(JobRow.batch_id == batch_id, JobRow.status.in_(_ACTIVE)))
    ).scalar_one()
    if not unfinished:
        _make_due(session, batch_id, "batch.completed")


def _after_commit(session: Session, ids: list[str]) -> None:
    """Hand the ids to this process's dispatcher once the transaction has committed (not before:
    a rolled-back finish must send nothing)."""
    if not ids or not dispatch.enabled():
        return
    pending: list[str] = session.info.setdefault("webhook_deliveries_due", [])
    if not pending:
        @event.listens_for(session, "after_commit", once=True)
        def _kick(_: Session) -> None:
            dispatch.kick(list(session.info.pop("webhook_deliveries_due", [])))

        @event.listens_for(session, "after_rollback", once=True)
        def _forget(_: Session) -> None:
            session.info.pop("webhook_deliveries_due", None)
    pending.extend(ids)


def claim(session: Session, *, ids: list[str] | None = None, limit: int = 50,
          lease_seconds: float = 60.0) -> list[WebhookDeliveryRow]:
    """Take due deliveries for one attempt each (SKIP LOCKED; the lease makes them due again later)."""
    due = select(Delivery.id).where(Delivery.state == "pending", Delivery.next_attempt_at <= func.now())
    if ids is not None:
        due = due.where(Delivery.id.in_(ids))
    due = due.order_by(Delivery.next_attempt_at).limit(limit).with_for_update(skip_locked=True)
    lease = func.now() + func.make_interval(0, 0, 0, 0, 0, 0, lease_seconds)
    rows = session.execute(
        update(Delivery).where(Delivery.id.in_(due.scalar_subquery()))
        .values(attempts=Delivery.attempts + 1, next_attempt_at=lease, updated_at=func.now())
        .returning(Delivery)
    ).scalars().all()
    return list(rows)


Outcome = Literal["delivered", "retry", "failed"]


def next_retry_delay(attempts: int, retry_after: float | None, rng: random.Random | None = None) -> float | None:
    """Seconds until the next attempt after `attempts` failed ones, or None when there is none left.

    A receiver's Retry-After is honoured when it asks for longer than the schedule (up to a day).
    """
    if attempts >= MAX_ATTEMPTS:
        return None
    delay = RETRY_DELAYS[max(attempts, 1) - 1] * (rng or random).uniform(0.9, 1.1)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


@dataclass(frozen=True)
class Attempted:
    """One attempt's outcome, for the row claimed at `attempts`; `delay` (seconds) when retried."""

    id: str
    attempts: int
    outcome: Outcome
    status: int | None
    error: str | None
    delay: float | None = None


_RECORD = text("""
UPDATE webhook_deliveries AS d SET
  state = CASE WHEN v.outcome = 'retry' THEN d.state ELSE v.outcome END,
  next_attempt_at = CASE WHEN v.outcome = 'retry' THEN now() + make_interval(secs => v.delay) END,
  last_status = v.status, last_error = v.error, updated_at = now()
FROM jsonb_to_recordset(CAST(:rows AS jsonb))
  AS v(id text, attempts int, outcome text, status int, error text, delay float8)
WHERE d.id = v.id AND d.state = 'pending' AND d.attempts = v.attempts
RETURNING d.id
""")


def record(session: Session, attempted: list[Attempted]) -> set[str]:
    """Record a round of outcomes in one statement; the ids recorded (a row another sender has taken
    since, its lease having run out, is left to that sender)."""
    if not attempted:
        return set()
    rows = json.dumps([a.__dict__ for a in attempted])
    return set(session.execute(_RECORD, {"rows": rows}).scalars())


def statuses(session: Session, subject_ids: list[str]) -> dict[str, WebhookStatus]:
    """The webhook status of each job or batch that has one (one query for all)."""
    if not subject_ids:
        return {}
    rows = session.execute(
        select(Delivery.subject_id, Delivery.state, Delivery.attempts).where(Delivery.subject_id.in_(subject_ids))
    ).all()
    return {
        subject: WebhookStatus.model_validate({"state": "pending" if state == "waiting" else state,
                                               "attempts": attempts})
        for subject, state, attempts in rows
    }
