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
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert

from functions.scheduling import cron
from functions.scheduling.models import TickResult
from functions.scheduling.service import SchedulingNotConfiguredError
from shared.batches import NewBatch, create_batches
from shared.config import get_settings
from shared.database import session_scope
from shared.generation import advance_due_videos
from shared.jobs import new_id, requeue_stale_items
from shared.media.request import GenerationRequest
from shared.outbox import enqueue, publish_pending
from shared.ratelimit import prune_rate_limits
from shared.tables import ScheduleRow, ScheduleRunRow, TickRow

HOUSEKEEPING_LOCK = 7_326_190_115
_log = logging.getLogger("genmedia.scheduling")


def _advance(row: ScheduleRow, due: datetime, now: datetime) -> datetime | None:
    if not row.cron:
        return None
    return cron.next_after(row.cron, cron.parse_timezone(row.timezone or "UTC"), max(due, now))


def claim_due_schedules(limit: int, topic: str, *, now: datetime | None = None) -> tuple[int, int]:
    """Fire up to `limit` schedules due at `now` (default: the database's clock): (claimed, fired)."""
    with session_scope() as session:
        now = now or session.execute(select(func.now())).scalar_one()
        rows = session.execute(
            select(ScheduleRow)
            .where(ScheduleRow.next_run_at <= now, ScheduleRow.paused.is_(False))
            .order_by(ScheduleRow.next_run_at).limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars().all()
        if not rows:
            return 0, 0
        runs = {row.id: (row.next_run_at, new_id("bat")) for row in rows}
        # One statement records every run; the primary key (schedule, due time) drops any repeat.
        recorded = set(session.execute(
            insert(ScheduleRunRow)
            .values([{"schedule_id": sid, "due_at": due, "batch_id": bid} for sid, (due, bid) in runs.items()])
            .on_conflict_do_nothing().returning(ScheduleRunRow.schedule_id)
        ).scalars())
        fired = [
            NewBatch(runs[row.id][1], row.owner_id, [GenerationRequest.model_validate(r) for r in row.requests],
                     schedule_id=row.id)
            for row in rows if row.id in recorded
        ]
        for row in rows:
            due = row.next_run_at
            assert due is not None
            row.last_run_at = due
            row.next_run_at = _advance(row, due, now)
            row.updated_at = now
        if fired:
            create_batches(session, fired, topic=topic)
        return len(rows), len(fired)


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
    duplicate = bool(job_name and schedule_time and _tick_seen(job_name, schedule_time))
    fired = 0
    if not duplicate:
        while True:
            claimed, fired_now = claim_due_schedules(settings.tick_claim_chunk, topic)
            fired += fired_now
            if claimed < settings.tick_claim_chunk:
                break
        if job_name and schedule_time:
            _record_tick(job_name, schedule_time, fired)
    requeued = requeue_lost_items(topic)
    published = 0
    while (count := publish_pending()) > 0:
        published += count
    videos = advance_due_videos()
    housekeeping()
    if fired or published or videos or requeued:
        _log.info("tick", extra={"fired": fired, "published": published, "videos_polled": videos,
                                 "requeued": requeued})
    return TickResult(fired=fired, published=published, videos_polled=videos, requeued=requeued,
                      duplicate_tick=duplicate)


def requeue_lost_items(topic: str, limit: int = 500) -> int:
    """Publish again the batch items whose delivery was lost (see `jobs.requeue_stale_items`)."""
    settings = get_settings()
    with session_scope() as session:
        rows = requeue_stale_items(session, limit=limit, queued_after_seconds=settings.item_requeue_after_seconds)
        if rows:
            enqueue(session, topic, [{"batch_id": r.batch_id, "item_id": r.id, "request": r.request} for r in rows])
    if rows:
        _log.warning("requeued %d batch items whose delivery was lost", len(rows))
    return len(rows)

