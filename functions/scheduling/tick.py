"""The minute tick: fire every due schedule exactly once, then publish, poll videos, and tidy up.

The tick claims due schedules with `FOR UPDATE SKIP LOCKED` in short transactions; in the same
transaction it records the runs (primary key: schedule + due time), writes their batches and outbox
rows, and advances `next_run_at`. Publishing happens after commit, from the outbox. Concurrent ticks
split the due schedules; a tick that dies mid-way leaves either nothing or a committed run to publish.

Misfire policy: after downtime a cron schedule fires once for the missed window (its earliest
missed time is recorded as `due_at`), then resumes at the first time after now.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from functions.scheduling import cron
from functions.scheduling.budget import decide_runs
from functions.scheduling.models import TickResult
from functions.scheduling.service import SchedulingNotConfiguredError
from shared.batches import BatchItem, NewBatch, create_batches, split_items
from shared.config import get_settings
from shared.database import session_scope
from shared.exceptions import GenmediaError
from shared.generation import advance_due_videos
from shared.jobs import JobError, new_id, requeue_stale_items
from shared.leases import interrupt_abandoned_generations
from shared.outbox import enqueue, publish_pending
from shared.quotas.admission import paced_models
from shared.quotas.queue import close_windows, dispatch_waiting
from shared.ratelimit import prune_rate_limits
from shared.results.results_file import write_pending_results
from shared.tables import ScheduleRow, ScheduleRunRow, TickRow
from shared.telemetry import metrics
from shared.webhooks.sender import deliver_due

HOUSEKEEPING_LOCK = 7_326_190_115
BROKEN = JobError(reason="RUN_FAILED", message="the schedule could not be fired and is stopped; recreate it")
_log = logging.getLogger("genmedia.scheduling")


def _advance(row: ScheduleRow, due: datetime, now: datetime) -> datetime | None:
    if not row.cron:
        return None
    return cron.next_after(row.cron, cron.parse_timezone(row.timezone or "UTC"), max(due, now))


@dataclass(frozen=True)
class Claim:
    """One claim transaction: schedules claimed, runs that created a batch, runs refused, more due."""

    claimed: int
    fired: int
    refused: int = 0
    more: bool = False


def _due() -> tuple[Any, ...]:
    return ScheduleRow.next_run_at.is_not(None), ScheduleRow.paused.is_(False)


def _within_items(candidates: list[Any], max_items: int) -> list[str]:
    """The first candidates whose items add up to at most `max_items` (always at least one)."""
    ids: list[str] = []
    for schedule_id, items in candidates:
        max_items -= items
        if ids and max_items < 0:
            break
        ids.append(schedule_id)
    return ids


def claim_due_schedules(limit: int, topic: str, *, max_items: int | None = None,
                        now: datetime | None = None) -> Claim:
    """Fire up to `limit` schedules due at `now` (default: the database's clock), and at most
    `max_items` items (TICK_CLAIM_ITEMS) between them, in one transaction."""
    max_items = max_items or get_settings().tick_claim_items
    with session_scope() as session:
        now = now or session.execute(select(func.now())).scalar_one()
        candidates = session.execute(
            select(ScheduleRow.id, ScheduleRow.item_count)
            .where(ScheduleRow.next_run_at <= now, *_due())
            .order_by(ScheduleRow.next_run_at).limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if not candidates:
            return Claim(0, 0)
        ids = _within_items(list(candidates), max_items)
        rows = list(session.execute(
            select(ScheduleRow).where(ScheduleRow.id.in_(ids)).order_by(ScheduleRow.next_run_at)
        ).scalars())
        fired, refused = _fire(session, rows, now, topic)
        return Claim(len(rows), fired, refused, more=len(candidates) > len(rows) or len(candidates) == limit)


def _fire(session: Session, rows: list[ScheduleRow], now: datetime, topic: str) -> tuple[int, int]:
    """Record each row's run, create the batches the budget allows, advance: (fired, refused)."""
    runs = {row.id: (row.next_run_at, new_id("bat")) for row in rows}
    # One statement records every run; the primary key (schedule, due time) drops any repeat.
    recorded = set(session.execute(
        insert(ScheduleRunRow)
        .values([{"schedule_id": sid, "due_at": due, "batch_id": bid} for sid, (due, bid) in runs.items()])
        .on_conflict_do_nothing().returning(ScheduleRunRow.schedule_id)
    ).scalars())
    decided = decide_runs(session, [row for row in rows if row.id in recorded])
    for schedule_id, error in decided.refused.items():
        _record_refusal(session, schedule_id, runs[schedule_id][0], error)
    for row in rows:
        due = row.next_run_at
        assert due is not None
        row.last_run_at = due
        row.next_run_at = _advance(row, due, now)
        row.updated_at = now
    fired = [_new_batch(runs[row.id][1], row, decided.allowed[row.id]) for row in rows if row.id in decided.allowed]
    if fired:
        create_batches(session, fired, topic=topic)
    return len(fired), len(decided.refused)


def _new_batch(batch_id: str, row: ScheduleRow, items: list[BatchItem]) -> NewBatch:
    requests, custom_ids = split_items(items)
    return NewBatch(batch_id, row.owner_id, requests, schedule_id=row.id, custom_ids=custom_ids,
                    webhook_url=row.webhook_url)


def _record_refusal(session: Session, schedule_id: str, due: datetime | None, error: JobError) -> None:
    session.execute(update(ScheduleRunRow)
                    .where(ScheduleRunRow.schedule_id == schedule_id, ScheduleRunRow.due_at == due)
                    .values(batch_id=None, error=error.model_dump()))
    _log.warning("schedule run not generated: %s", error.message,
                 extra={"schedule_id": schedule_id, "reason": error.reason})


def skip_broken_schedule(topic: str) -> str | None:
    """Record the first due schedule's run as failed and stop it firing, when firing it failed.

    Called only after claiming it alone raised: whatever is wrong with it (a stored cron this version
    cannot read, a row too large to handle) must not stall the tick for every schedule due after it.
    """
    with session_scope() as session:
        row = session.execute(
            select(ScheduleRow).where(ScheduleRow.next_run_at <= func.now(), *_due())
            .order_by(ScheduleRow.next_run_at).limit(1).with_for_update(skip_locked=True)
        ).scalar_one_or_none()
        if row is None:
            return None
        session.execute(insert(ScheduleRunRow).values(
            schedule_id=row.id, due_at=row.next_run_at, batch_id=None, error=BROKEN.model_dump(),
        ).on_conflict_do_nothing())
        row.last_run_at, row.next_run_at, row.updated_at = row.next_run_at, None, func.now()
        _log.error("schedule cannot be fired; its run is recorded failed and it is stopped",
                   extra={"schedule_id": row.id, "reason": BROKEN.reason})
        return row.id


def fire_due_schedules(topic: str) -> tuple[int, int]:
    """Claim chunk after chunk until nothing is due: (fired, refused).

    A chunk that fails is retried one schedule at a time, and a schedule that fails alone is
    recorded as failed and stopped, so one broken schedule never blocks the others.
    """
    settings = get_settings()
    fired = refused = 0
    limit = settings.tick_claim_chunk
    while True:
        try:
            claim = claim_due_schedules(limit, topic, max_items=settings.tick_claim_items)
        except Exception as exc:
            if isinstance(exc, GenmediaError) and exc.retryable:
                raise  # the database, not a schedule: the next tick tries again
            _log.exception("claiming %d due schedules failed; retrying one at a time", limit)
            if limit == 1 and skip_broken_schedule(topic) is None:
                raise
            limit = 1
            continue
        fired, refused = fired + claim.fired, refused + claim.refused
        if not claim.more:
            return fired, refused
        limit = settings.tick_claim_chunk


def _tick_seen(job_name: str, schedule_time: str) -> bool:
    with session_scope() as session:
        return session.get(TickRow, (job_name, schedule_time)) is not None


def _record_tick(job_name: str, schedule_time: str, fired: int) -> None:
    with session_scope() as session:
        session.execute(insert(TickRow).values(job_name=job_name, schedule_time=schedule_time, fired=fired)
                        .on_conflict_do_nothing())


def housekeeping() -> bool:
    """Prune old tick records, published outbox rows and idempotency keys; one ticker at a time."""
    with session_scope() as session:
        if not session.execute(text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": HOUSEKEEPING_LOCK}).scalar():
            return False
        session.execute(text("DELETE FROM ticks WHERE created_at < now() - interval '2 days'"))
        session.execute(text("DELETE FROM outbox WHERE published_at < now() - interval '7 days'"))
        session.execute(text("DELETE FROM idempotency_keys WHERE created_at < now() - interval '2 days'"))
        prune_rate_limits(session)
    return True


def tick(*, job_name: str | None, schedule_time: str | None) -> TickResult:
    """Fire due schedules, publish the outbox, advance running videos. Safe to run concurrently."""
    settings = get_settings()
    topic = settings.pubsub_batch_topic
    if not topic:
        raise SchedulingNotConfiguredError()
    started = time.perf_counter()
    duplicate = bool(job_name and schedule_time and _tick_seen(job_name, schedule_time))
    fired = refused = 0
    if not duplicate:
        fired, refused = fire_due_schedules(topic)
        if job_name and schedule_time:
            _record_tick(job_name, schedule_time, fired)
    requeued = requeue_lost_items(topic)
    interrupted = interrupt_abandoned()
    # Admit what each model's Vertex AI budget allows now (also restarts a queue whose last finishing
    # item died with its instance), and log the windows that ended since.
    admitted = dispatch_waiting(topic)
    close_windows()
    published = 0
    while (count := publish_pending()) > 0:
        published += count
    videos = advance_due_videos()
    results = write_pending_results()  # batches whose last item was a video this tick finished, or a retry
    webhooks = deliver_due()
    housekeeping()
    if fired or refused or published or videos or requeued or interrupted or admitted or webhooks or results:
        _log.info("tick", extra={"fired": fired, "refused": refused, "published": published, "videos_polled": videos,
                                 "requeued": requeued, "interrupted": interrupted, "admitted": admitted,
                                 "webhook_attempts": webhooks, "results_written": results})
    # Every tick, idle ones too: the "tick stopped" alert watches for this line going missing.
    metrics.record(metrics.TICK_FINISHED, value=time.perf_counter() - started, fired=fired)
    return TickResult(fired=fired, refused=refused, published=published, videos_polled=videos,
                      requeued=requeued, interrupted=interrupted, webhook_attempts=webhooks,
                      results_written=results, duplicate_tick=duplicate)


def interrupt_abandoned(limit: int = 500) -> int:
    """End the single generations whose function died mid-call (see `leases.interrupt_abandoned_generations`)."""
    with session_scope() as session:
        ids = interrupt_abandoned_generations(
            session, limit=limit, unleased_after_seconds=get_settings().item_requeue_after_seconds)
    if ids:
        _log.warning("%d generations interrupted: their function died before an outcome", len(ids),
                     extra={"job_ids": ids[:20]})
    return len(ids)


def requeue_lost_items(topic: str, limit: int = 500) -> int:
    """Publish again the batch items whose delivery was lost (see `jobs.requeue_stale_items`); those of
    paced models go back to their queue instead, to be published again when their turn comes."""
    settings = get_settings()
    with session_scope() as session:
        rows = requeue_stale_items(session, limit=limit, queued_after_seconds=settings.item_requeue_after_seconds)
        paced = paced_models(session, {r.model for r in rows}) if rows else set()
        for row in rows:
            if row.model in paced:
                row.status, row.admitted_at, row.lease_until = "queued", None, None
        enqueue(session, topic, [{"batch_id": r.batch_id, "item_id": r.id, "request": r.request}
                                 for r in rows if r.model not in paced])
    if rows:
        _log.warning("requeued %d batch items whose delivery was lost", len(rows))
    return len(rows)

