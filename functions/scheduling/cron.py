"""Cron times in a real timezone, across daylight-saving changes, without skipping or doubling.

croniter walks naive wall-clock times; each is placed in the zone with `fold=0`. A wall time that
does not exist (spring forward) lands shifted by the gap (02:30 -> 03:30 EDT); a wall time that
exists twice (fall back) fires at its first occurrence only, as Vixie cron does. Because that mapping
is not monotonic around a gap, the next firing is the smallest instant after `after` among the wall
times near it, so a shifted time and the real one after the gap never fire twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

# No zone shifts by more than 2 hours at once, so instants are within 3 hours of wall order.
_WINDOW = timedelta(hours=3)
_MAX_STEPS = 10_000


def parse_timezone(name: str) -> ZoneInfo:
    """The IANA zone, or ValueError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError("unknown IANA timezone") from None


def is_valid_cron(expression: str) -> bool:
    """Five fields that croniter understands (no seconds field, no year field)."""
    return len(expression.split()) == 5 and croniter.is_valid(expression)


def next_after(expression: str, tz: ZoneInfo, after: datetime) -> datetime:
    """The first firing strictly after the aware instant `after`, as an aware UTC datetime."""
    wall = after.astimezone(tz).replace(tzinfo=None, fold=0)
    # Fast path, nearly always: no offset change around `after` and the next wall time.
    candidate = croniter(expression, wall).get_next(datetime)
    instant = candidate.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if instant > after and _offset(tz, after - _WINDOW) == _offset(tz, instant + _WINDOW):
        return instant
    return _next_after_near_a_transition(expression, tz, after, wall)


def _offset(tz: ZoneInfo, instant: datetime) -> object:
    return instant.astimezone(tz).utcoffset()


def _next_after_near_a_transition(expression: str, tz: ZoneInfo, after: datetime, wall: datetime) -> datetime:
    """The slow, exact walk: wall times near `after`, placed in the zone, the smallest instant wins."""
    it = croniter(expression, wall - _WINDOW)
    best: tuple[datetime, datetime] | None = None
    for _ in range(_MAX_STEPS):
        candidate = it.get_next(datetime)
        if best is not None and candidate > best[1] + _WINDOW:
            return best[0]
        instant = candidate.replace(tzinfo=tz, fold=0).astimezone(UTC)
        if instant > after and (best is None or instant < best[0]):
            best = (instant, candidate)
    raise ValueError("cron expression does not fire")


def firings(expression: str, tz: ZoneInfo, after: datetime, count: int) -> list[datetime]:
    """The next `count` firings after `after`."""
    out: list[datetime] = []
    for _ in range(count):
        after = next_after(expression, tz, after)
        out.append(after)
    return out


def min_interval_seconds(expression: str, tz: ZoneInfo, start: datetime, samples: int = 24) -> float:
    """The shortest gap between upcoming firings (for the too-frequent check)."""
    times = firings(expression, tz, start, samples)
    return min((b - a).total_seconds() for a, b in pairwise(times))
