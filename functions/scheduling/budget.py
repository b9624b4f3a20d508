"""What a run may generate when its schedule fires: readable requests, within the owner's budget.

A schedule's run is paid for like a request of its own: a single request from the owner's
`generate` budget, a batch from its `batch` items, in the window the run fires in. A run the budget
refuses (or whose stored requests no longer validate) is recorded with the reason, not generated.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pydantic
from sqlalchemy.orm import Session

from shared.access import family_limit
from shared.batches import BatchItem
from shared.config import get_settings
from shared.exceptions import GenmediaError
from shared.jobs import JobError
from shared.ratelimit import check_rate_limit
from shared.tables import ScheduleRow

__all__ = ["Decided", "decide_runs"]

INVALID = JobError(reason="INVALID_REQUEST", message="the schedule's stored request is no longer valid")


@dataclass(frozen=True)
class Decided:
    """Per schedule id: the requests to generate, or why the run generates nothing."""

    allowed: dict[str, list[BatchItem]]
    refused: dict[str, JobError]


def _family(row: ScheduleRow) -> str:
    return "batch" if row.is_batch else "generate"


def _spend(session: Session, owner: str, family: str, cost: int) -> JobError | None:
    """Spend `cost` of the owner's budget for `family` now; the refusal as a run error, else None."""
    limit = family_limit(family)
    if limit == 0:
        return None
    try:
        check_rate_limit(session, owner, family, cost, limit, get_settings().rate_limit_window_seconds)
    except GenmediaError as err:  # RateLimitError, or CostOverLimitError for a run bigger than the limit
        return JobError(reason=err.reason, message=err.message)
    return None


def decide_runs(session: Session, rows: list[ScheduleRow]) -> Decided:
    """Validate each row's requests and draw them from its owner's budget, in the caller's transaction.

    One spend per owner and family when everything fits (the common case, one statement); when it
    does not, schedule by schedule in firing order, so what fits still fires.
    """
    allowed: dict[str, list[BatchItem]] = {}
    refused: dict[str, JobError] = {}
    groups: dict[tuple[str, str], list[ScheduleRow]] = defaultdict(list)
    for row in rows:
        try:
            allowed[row.id] = [BatchItem.model_validate(r) for r in row.requests]
        except (pydantic.ValidationError, TypeError, ValueError):
            refused[row.id] = INVALID
            continue
        groups[(row.owner_id, _family(row))].append(row)
    for (owner, family), members in groups.items():
        if len(members) > 1 and _spend(session, owner, family, sum(len(allowed[r.id]) for r in members)) is None:
            continue
        for row in members:
            error = _spend(session, owner, family, len(allowed[row.id]))
            if error is not None:
                refused[row.id] = error
                del allowed[row.id]
    return Decided(allowed, refused)
