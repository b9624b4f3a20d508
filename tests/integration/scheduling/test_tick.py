"""The tick against a real PostgreSQL: exactly once per due time, however ticks race or die."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from functions.scheduling import service, tick
from functions.scheduling.models import ScheduleCreate
from shared import config
from shared.database import session_scope

TOPIC = "projects/genmedia-test/topics/batches"


@pytest.fixture(autouse=True)
def _topic(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBSUB_BATCH_TOPIC", TOPIC)
    # Nothing listens there: publishing fails fast and rows stay in the outbox, as after a crash.
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")
    monkeypatch.setenv("PUBSUB_PUBLISH_TIMEOUT_SECONDS", "0.5")
    config.get_settings.cache_clear()


def make_schedule(cron: str = "*/5 * * * *", tz: str = "UTC", prompt: str = "a lighthouse") -> str:
    body = ScheduleCreate.model_validate({"request": {"kind": "image", "prompt": prompt}, "cron": cron,
                                          "timezone": tz})
    schedule, _ = service.create_schedule(body, owner_id="", idempotency_key=None, digest="")
    return schedule.id


def set_due(schedule_id: str, at: datetime) -> None:
    with session_scope() as session:
        session.execute(sa.text("UPDATE schedules SET next_run_at = :at WHERE id = :id"),
                        {"at": at, "id": schedule_id})


def scalar(sql: str, **params: Any) -> Any:
    with session_scope() as session:
        return session.execute(sa.text(sql), params).scalar_one()


def runs_per_schedule() -> Counter[str]:
    with session_scope() as session:
        rows = session.execute(sa.text("SELECT schedule_id FROM schedule_runs")).scalars().all()
    return Counter(rows)


def test_eight_concurrent_ticks_fire_each_due_schedule_exactly_once(db: Any) -> None:
    ids = [make_schedule(prompt=f"scene {i}") for i in range(60)]
    past = datetime.now(UTC) - timedelta(minutes=1)
    for schedule_id in ids:
        set_due(schedule_id, past)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def run_tick() -> None:
        barrier.wait()
        try:
            tick.tick(job_name=None, schedule_time=None)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=run_tick) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert runs_per_schedule() == Counter({schedule_id: 1 for schedule_id in ids})
    assert scalar("SELECT count(*) FROM outbox") == 60
    assert scalar("SELECT count(*) FROM batches WHERE schedule_id IS NOT NULL") == 60


def test_a_tick_killed_between_claim_and_publish_loses_and_doubles_nothing(db: Any) -> None:
    schedule_id = make_schedule()
    set_due(schedule_id, datetime.now(UTC) - timedelta(seconds=5))
    claim = tick.claim_due_schedules(100, TOPIC)  # the tick "dies" right after its commit
    assert (claim.claimed, claim.fired) == (1, 1)
    assert scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 1
    result = tick.tick(job_name=None, schedule_time=None)
    assert result.fired == 0
    assert runs_per_schedule()[schedule_id] == 1
    assert scalar("SELECT count(*) FROM outbox") == 1  # still pending (no broker here), never duplicated


def test_repeated_ticks_with_the_same_schedule_time_are_no_ops(db: Any) -> None:
    schedule_id = make_schedule()
    set_due(schedule_id, datetime.now(UTC) - timedelta(seconds=5))
    first = tick.tick(job_name="projects/p/locations/l/jobs/tick", schedule_time="2026-11-26T10:00:00Z")
    set_due(schedule_id, datetime.now(UTC) - timedelta(seconds=5))
    again = tick.tick(job_name="projects/p/locations/l/jobs/tick", schedule_time="2026-11-26T10:00:00Z")
    assert (first.fired, first.duplicate_tick) == (1, False)
    assert (again.fired, again.duplicate_tick) == (0, True)
    assert runs_per_schedule()[schedule_id] == 1


def test_a_one_off_schedule_fires_once_and_completes(db: Any) -> None:
    body = ScheduleCreate.model_validate({"request": {"kind": "image", "prompt": "x"},
                                          "run_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()})
    schedule, _ = service.create_schedule(body, owner_id="", idempotency_key=None, digest="")
    set_due(schedule.id, datetime.now(UTC) - timedelta(seconds=1))
    tick.tick(job_name=None, schedule_time=None)
    tick.tick(job_name=None, schedule_time=None)
    shown = service.read_schedule(schedule.id, owner_id="")
    assert shown.state == "completed" and shown.next_run_at is None
    assert len(shown.runs) == 1 and shown.last_run_at == shown.runs[0].due_at


def test_after_downtime_a_cron_fires_once_for_the_missed_window(db: Any) -> None:
    schedule_id = make_schedule("*/5 * * * *")
    missed_since = datetime.now(UTC) - timedelta(hours=3)
    set_due(schedule_id, missed_since)
    tick.tick(job_name=None, schedule_time=None)
    shown = service.read_schedule(schedule_id, owner_id="")
    assert len(shown.runs) == 1
    assert shown.runs[0].due_at == missed_since.replace(microsecond=shown.runs[0].due_at.microsecond)
    assert shown.next_run_at is not None and shown.next_run_at > datetime.now(UTC)


def test_paused_schedules_do_not_fire_and_resume_from_now(db: Any) -> None:
    schedule_id = make_schedule()
    service.set_paused(schedule_id, owner_id="", paused=True)
    set_due(schedule_id, datetime.now(UTC) - timedelta(minutes=30))
    tick.tick(job_name=None, schedule_time=None)
    assert runs_per_schedule()[schedule_id] == 0
    resumed = service.set_paused(schedule_id, owner_id="", paused=False)
    assert resumed.state == "active" and resumed.next_run_at > datetime.now(UTC)


@pytest.mark.parametrize(
    ("tz", "cron", "day", "expected_local"),
    [
        ("America/New_York", "30 2 * * *", datetime(2026, 3, 8, tzinfo=UTC), ["03:30"]),
        ("America/New_York", "30 1 * * *", datetime(2026, 11, 1, tzinfo=UTC), ["01:30"]),
        ("Europe/Berlin", "30 2 * * *", datetime(2026, 3, 29, tzinfo=UTC), ["03:30"]),
        ("Europe/Berlin", "30 2 * * *", datetime(2026, 10, 25, tzinfo=UTC), ["02:30"]),
    ],
)
def test_ticks_every_minute_across_a_dst_change_fire_each_day_once(
    db: Any, tz: str, cron: str, day: datetime, expected_local: list[str]
) -> None:
    from zoneinfo import ZoneInfo

    schedule_id = make_schedule(cron, tz)
    start = day - timedelta(hours=6)
    from functions.scheduling.cron import next_after, parse_timezone

    set_due(schedule_id, next_after(cron, parse_timezone(tz), start))
    minute = start
    while minute < day + timedelta(hours=30):
        tick.claim_due_schedules(100, TOPIC, now=minute)
        minute += timedelta(minutes=5)
    with session_scope() as session:
        due = session.execute(sa.text("SELECT due_at FROM schedule_runs ORDER BY due_at")).scalars().all()
    zone = ZoneInfo(tz)
    local_days = [d.astimezone(zone).date() for d in due]
    assert len(local_days) == len(set(local_days))  # never twice on a day
    transition_day = [d for d in due if d.astimezone(zone).date() == day.date()]
    assert [d.astimezone(zone).strftime("%H:%M") for d in transition_day] == expected_local


def test_the_tick_requeues_items_whose_delivery_was_lost(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.batches import NewBatch, create_batches
    from shared.media.capabilities import resolve
    from shared.media.request import GenerationRequest

    monkeypatch.setenv("ITEM_REQUEUE_AFTER_SECONDS", "60")
    config.get_settings.cache_clear()
    requests = [resolve(GenerationRequest(kind="image", prompt=f"p{i}")) for i in range(4)]
    with session_scope() as session:
        create_batches(session, [NewBatch("bat_lost", "", requests)], topic=TOPIC)
        session.execute(sa.text("UPDATE jobs SET updated_at = now() - interval '10 minutes' WHERE item_index = 0"))
        session.execute(sa.text("UPDATE jobs SET status = 'running', lease_until = now() - interval '1 second' "
                                "WHERE item_index = 1"))
        session.execute(sa.text("UPDATE jobs SET status = 'running', lease_until = now() + interval '1 minute' "
                                "WHERE item_index = 2"))
    before = scalar("SELECT count(*) FROM outbox")
    result = tick.tick(job_name=None, schedule_time=None)
    assert result.requeued == 2
    requeued = scalar("SELECT array_agg(payload->>'item_id' ORDER BY id) FROM outbox WHERE id > :n", n=before)
    assert sorted(requeued) == ["bat_lost_0000", "bat_lost_0001"]
    assert tick.tick(job_name=None, schedule_time=None).requeued == 0  # once per interval, not per tick


def test_the_tick_ends_a_single_generation_whose_lease_ran_out(db: Any) -> None:
    from shared.idempotency import replayed
    from shared.jobs import create_job
    from shared.media.capabilities import resolve
    from shared.media.request import GenerationRequest

    request = resolve(GenerationRequest(kind="image", prompt="a fox"))
    with session_scope() as session:
        for job_id, lease in (("gen_dead", 0.001), ("gen_alive", 600.0)):
            create_job(session, request, owner_id="k", job_id=job_id, status="running", lease_seconds=lease)
            replayed(session, owner_id="k", scope="generations", key=f"key-{job_id}", digest="d",
                     resource_id=job_id)
        # Running since before leases existed: ended once it is older than ITEM_REQUEUE_AFTER_SECONDS.
        create_job(session, request, owner_id="k", job_id="gen_old", status="running")
        session.execute(sa.text("UPDATE jobs SET updated_at = now() - interval '1 hour' WHERE id = 'gen_old'"))
    assert tick.tick(job_name=None, schedule_time=None).interrupted == 2
    with session_scope() as session:
        rows = dict(session.execute(sa.text("SELECT id, error->>'reason' FROM jobs WHERE status = 'failed'")).all())
        keys = session.execute(sa.text("SELECT resource_id FROM idempotency_keys")).scalars().all()
    assert rows == {"gen_dead": "INTERRUPTED", "gen_old": "INTERRUPTED"}
    assert keys == ["gen_alive"]  # a retry of the interrupted request runs again
    assert tick.tick(job_name=None, schedule_time=None).interrupted == 0
