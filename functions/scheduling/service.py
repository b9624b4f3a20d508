"""Schedules: validate, store, list, pause and delete them (firing them is `tick.py`'s job)."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, text, tuple_
from sqlalchemy.orm import Session, defer

from functions.scheduling import cron
from functions.scheduling.models import Schedule, ScheduleCreate, ScheduleRun, ScheduleSummary
from shared.batches import BatchItem, split_items
from shared.config import get_settings
from shared.database import session_scope
from shared.exceptions import GenmediaError, NotFoundError, ServiceUnavailableError, ValidationError
from shared.idempotency import replayed
from shared.jobs import JobError, new_id, shown_id
from shared.media.capabilities import resolve_all
from shared.media.request import GenerationRequest
from shared.tables import ScheduleRow, ScheduleRunRow
from shared.uploads.references import resolve_inputs
from shared.webhooks.api import check_webhook_url

__all__ = ["Schedule", "ScheduleLimitError", "ScheduleListQuery", "SchedulePage", "ScheduleSummary",
           "create_schedule", "delete_schedule", "list_schedules", "read_schedule", "set_paused"]

SCOPE = "schedules"
RUNS_SHOWN = 20
_OWNER_LOCK = 1_212  # pg_advisory_xact_lock(namespace, hashtext(owner)): one creation per owner at a time
_log = logging.getLogger("genmedia.scheduling")


class SchedulingNotConfiguredError(ServiceUnavailableError):
    """PUBSUB_BATCH_TOPIC is not set, so schedule runs cannot be published."""

    reason = "SCHEDULING_NOT_CONFIGURED"
    default_message = "scheduling is not available on this deployment"


class ScheduleLimitError(GenmediaError):
    """The owner already stores as many schedules (or bytes of them) as allowed; delete some first."""

    http_status = 400
    grpc_status = "FAILED_PRECONDITION"
    reason = "SCHEDULE_LIMIT_REACHED"
    default_message = "the schedule limit of this API key is reached; delete schedules first"


def _invalid(field: str, description: str) -> ValidationError:
    return ValidationError.for_field(field, description)


def _resolve_requests(body: ScheduleCreate, owner_id: str) -> list[dict[str, object]]:
    """The requests to store, resolved (model and inputs), each with its custom_id (items of `requests`)."""
    custom_ids: list[str | None] = [None]
    if body.request is not None:
        pairs: list[tuple[str, GenerationRequest]] = [("request", body.request)]
    else:
        requests, custom_ids = split_items(body.requests or [], prefix="requests")
        pairs = [(f"requests[{i}]", r) for i, r in enumerate(requests)]
    resolved = resolve_all(pairs)
    # Inputs are resolved once, now: each run reads the same objects (an upload lives until the bucket's
    # lifecycle rule deletes it; an output of a job for as long as the job's outputs are kept).
    inputs = resolve_inputs([(prefix, r) for (prefix, _), r in zip(pairs, resolved, strict=True)],
                            owner_id=owner_id)
    return [{**r.model_dump(exclude_none=True), **({"custom_id": c} if c else {})}
            for r, c in zip(inputs, custom_ids, strict=True)]


def first_run(body: ScheduleCreate, now: datetime) -> datetime:
    """When a new schedule fires first; ValidationError naming the field when it cannot."""
    if body.run_at is not None:
        if body.run_at <= now:
            raise _invalid("run_at", "must be in the future")
        return body.run_at.astimezone(UTC)
    expression = body.cron or ""
    if not cron.is_valid_cron(expression):
        raise _invalid("cron", "must be a valid 5-field cron expression")
    try:
        tz = cron.parse_timezone(body.timezone or "UTC")
    except ValueError:
        raise _invalid("timezone", "must be an IANA timezone such as Europe/Paris") from None
    try:
        gap = cron.min_interval_seconds(expression, tz, now)
    except ValueError:
        raise _invalid("cron", "never fires") from None
    minimum = get_settings().schedule_min_interval_seconds
    if gap < minimum:
        raise _invalid("cron", f"fires more often than every {minimum} seconds")
    return cron.next_after(expression, tz, now)


def create_schedule(
    body: ScheduleCreate, *, owner_id: str, idempotency_key: str | None, digest: str
) -> tuple[Schedule, bool]:
    """Validate and store a schedule; (schedule, created)."""
    requests = _resolve_requests(body, owner_id)
    next_run = first_run(body, datetime.now(UTC))
    check_webhook_url(body.webhook_url)
    schedule_id = new_id("sch")
    stored = requests
    size = len(json.dumps(stored, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"))
    with session_scope() as session:
        earlier = replayed(session, owner_id=owner_id, scope=SCOPE, key=idempotency_key, digest=digest,
                           resource_id=schedule_id)
        if earlier is not None:
            return _view(session, _get(session, earlier, owner_id)), False
        _check_owner_cap(session, owner_id, size)
        row = ScheduleRow(
            id=schedule_id, owner_id=owner_id, requests=stored, item_count=len(stored), stored_bytes=size,
            is_batch=body.requests is not None, cron=body.cron,
            timezone=(body.timezone or "UTC") if body.cron else None,
            run_at=body.run_at, paused=False, next_run_at=next_run, webhook_url=body.webhook_url,
        )
        session.add(row)
        session.flush()
        return _view(session, row), True


def _check_owner_cap(session: Session, owner_id: str, size: int) -> None:
    """ScheduleLimitError when one more schedule of `size` bytes passes the owner's caps.

    Creations of one owner are serialised (a transaction-scoped advisory lock), so concurrent
    requests cannot all pass the check.
    """
    settings = get_settings()
    session.execute(text("SELECT pg_advisory_xact_lock(:ns, hashtext(:owner))"),
                    {"ns": _OWNER_LOCK, "owner": owner_id})
    count, stored = session.execute(
        select(func.count(), func.coalesce(func.sum(ScheduleRow.stored_bytes), 0))
        .where(ScheduleRow.owner_id == owner_id)
    ).one()
    if count >= settings.schedule_max_per_owner:
        raise ScheduleLimitError(f"this API key already has {count} schedules, the most allowed;"
                                 " delete some first", metadata={"limit": str(settings.schedule_max_per_owner)})
    if stored + size > settings.schedule_max_bytes_per_owner:
        raise ScheduleLimitError(
            f"this schedule ({size} bytes) would take this API key's schedules past"
            f" {settings.schedule_max_bytes_per_owner} bytes; delete some first",
            metadata={"limit_bytes": str(settings.schedule_max_bytes_per_owner)})


def _get(session: Session, schedule_id: str, owner_id: str, *, lock: bool = False) -> ScheduleRow:
    row = session.get(ScheduleRow, schedule_id, with_for_update=lock)
    if row is None or row.owner_id != owner_id:
        raise NotFoundError(f"schedule {shown_id(schedule_id)} not found")
    return row


def _view(session: Session, row: ScheduleRow) -> Schedule:
    session.refresh(row)
    runs = session.execute(
        select(ScheduleRunRow).where(ScheduleRunRow.schedule_id == row.id)
        .order_by(ScheduleRunRow.due_at.desc()).limit(RUNS_SHOWN)
    ).scalars().all()
    return _to_schedule(row, [_run(r) for r in runs])


def _run(found: Any) -> ScheduleRun:
    error = JobError(**found.error) if found.error else None
    return ScheduleRun(due_at=found.due_at, batch_id=found.batch_id, error=error, created_at=found.created_at)


def _summary(row: ScheduleRow, runs: list[ScheduleRun]) -> ScheduleSummary:
    state = "paused" if row.paused else "active" if row.next_run_at is not None else "completed"
    return ScheduleSummary(
        id=row.id, state=state, item_count=row.item_count, cron=row.cron, timezone=row.timezone,
        run_at=row.run_at, next_run_at=row.next_run_at, last_run_at=row.last_run_at,
        runs=runs, webhook_url=row.webhook_url, created_at=row.created_at, updated_at=row.updated_at,
    )


def _to_schedule(row: ScheduleRow, runs: list[ScheduleRun]) -> Schedule:
    requests = [BatchItem.model_validate(r) for r in row.requests]
    return Schedule(**dict(_summary(row, runs)), request=None if row.is_batch else requests[0].request(),
                    requests=requests if row.is_batch else None)


def read_schedule(schedule_id: str, *, owner_id: str) -> Schedule:
    """The schedule with its most recent runs."""
    with session_scope() as session:
        return _view(session, _get(session, schedule_id, owner_id))


class ScheduleListQuery(BaseModel):
    """`GET /v1/schedules` query: how many per page, and where the previous page stopped."""

    model_config = ConfigDict(extra="forbid")

    page_size: int = Field(default=50, ge=1, le=200)
    page_token: str | None = Field(default=None, max_length=200)


class SchedulePage(BaseModel):
    """One page of the caller's schedules, newest first; `next_page_token` is null on the last page.

    Schedules are listed without their requests (`item_count` says how many), and a page ends early
    when it would pass SCHEDULE_LIST_MAX_BYTES.
    """

    schedules: list[ScheduleSummary]
    next_page_token: str | None = None


def _page_token(row: ScheduleRow) -> str:
    raw = json.dumps([row.created_at.isoformat(), row.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _page_after(token: str) -> tuple[datetime, str]:
    try:
        created, schedule_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(schedule_id, str) or "\x00" in schedule_id:
            raise ValueError("not one of our ids")
        return datetime.fromisoformat(created), schedule_id
    except (binascii.Error, ValueError, TypeError):
        raise _invalid("page_token", "is not a token from a previous page") from None


def _recent_runs(session: Session, schedule_ids: list[str]) -> dict[str, list[ScheduleRun]]:
    """The RUNS_SHOWN most recent runs of each schedule, in one query rather than one per schedule."""
    run = ScheduleRunRow
    rank = func.row_number().over(partition_by=run.schedule_id, order_by=run.due_at.desc()).label("rank")
    ranked = (select(run.schedule_id, run.due_at, run.batch_id, run.error, run.created_at, rank)
              .where(run.schedule_id.in_(schedule_ids)).subquery())
    recent = select(ranked).where(ranked.c.rank <= RUNS_SHOWN).order_by(ranked.c.due_at.desc())
    runs: dict[str, list[ScheduleRun]] = {}
    for found in session.execute(recent):
        runs.setdefault(found.schedule_id, []).append(_run(found))
    return runs


def list_schedules(query: ScheduleListQuery, *, owner_id: str) -> SchedulePage:
    """The owner's schedules, newest first, a page at a time (keyset pagination: stable under inserts)."""
    statement = select(ScheduleRow).where(ScheduleRow.owner_id == owner_id)
    if query.page_token:
        after = tuple_(*_page_after(query.page_token))
        statement = statement.where(tuple_(ScheduleRow.created_at, ScheduleRow.id) < after)
    statement = statement.order_by(ScheduleRow.created_at.desc(), ScheduleRow.id.desc())
    with session_scope() as session:
        # The requests are never read here: a list costs the same for 1-item and 1,000-item schedules.
        rows = session.execute(statement.options(defer(ScheduleRow.requests))
                               .limit(query.page_size + 1)).scalars().all()
        runs = _recent_runs(session, [row.id for row in rows[:query.page_size]])
        schedules = _fill_page([_summary(row, runs.get(row.id, [])) for row in rows[:query.page_size]])
        token = _page_token(rows[len(schedules) - 1]) if len(rows) > len(schedules) else None
    return SchedulePage(schedules=schedules, next_page_token=token)


def _fill_page(schedules: list[ScheduleSummary]) -> list[ScheduleSummary]:
    """The first schedules whose JSON stays within SCHEDULE_LIST_MAX_BYTES (always at least one)."""
    budget = get_settings().schedule_list_max_bytes
    page: list[ScheduleSummary] = []
    for schedule in schedules:
        budget -= len(schedule.model_dump_json())
        if page and budget < 0:
            break
        page.append(schedule)
    return page


def delete_schedule(schedule_id: str, *, owner_id: str) -> None:
    """Delete a schedule and its run history; batches it created stay."""
    with session_scope() as session:
        session.delete(_get(session, schedule_id, owner_id, lock=True))


def set_paused(schedule_id: str, *, owner_id: str, paused: bool) -> Schedule:
    """Pause, or resume from now on (times missed while paused do not fire)."""
    with session_scope() as session:
        row = _get(session, schedule_id, owner_id, lock=True)
        if row.paused != paused:
            row.paused = paused
            if not paused and row.cron and row.next_run_at is not None:
                now = datetime.now(UTC)
                row.next_run_at = cron.next_after(row.cron, cron.parse_timezone(row.timezone or "UTC"), now)
            row.updated_at = func.now()  # type: ignore[assignment]
        session.flush()
        return _view(session, row)
