"""Per-key, per-route-family fixed-window rate limits, enforced by one atomic upsert in PostgreSQL.

One statement per request counts and decides at once: the upsert only adds `cost` when the new total
stays within the limit, and the row lock it takes orders concurrent requests from every instance, so
exactly `limit` units get through per window however many instances race. Windows are aligned on the
database clock, so instances with drifting clocks still share one window. A refused request spends
nothing, so a batch too big for what is left does not starve the single requests behind it.

Run the check in its own short transaction (`enforce_rate_limit` does): inside a longer one, the row
lock would serialise every request of that key until the whole transaction commits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.database import session_scope
from shared.exceptions import RateLimitError, ValidationError

__all__ = [
    "CostOverLimitError",
    "Quota",
    "check_rate_limit",
    "enforce_rate_limit",
    "prune_rate_limits",
]

# A CTE fixes one clock reading, so the window and the time left in it agree; the upsert's WHERE makes
# a refusal leave the count untouched; the outer SELECT answers even when nothing was written.
_SPEND = text("""
WITH clock AS (
    SELECT now_ts, to_timestamp(floor(extract(epoch FROM now_ts) / :window) * :window) AS window_start
    FROM (SELECT clock_timestamp() AS now_ts) AS t
), spent AS (
    INSERT INTO rate_limits (key_id, family, window_start, count)
    SELECT :key_id, :family, window_start, :cost FROM clock
    ON CONFLICT (key_id, family, window_start)
    DO UPDATE SET count = rate_limits.count + EXCLUDED.count
    WHERE rate_limits.count + EXCLUDED.count <= :limit
    RETURNING count
)
SELECT (SELECT count FROM spent) AS used,
       extract(epoch FROM window_start - now_ts) + :window AS reset_after
FROM clock
""")

_PRUNE = text("DELETE FROM rate_limits WHERE window_start < clock_timestamp() - make_interval(secs => :age)")


class CostOverLimitError(ValidationError):
    """The request alone costs more than the whole per-window limit: waiting cannot help, split it."""

    reason = "COST_EXCEEDS_RATE_LIMIT"


@dataclass(frozen=True)
class Quota:
    """What a granted request left: for `RateLimit-*` style response headers."""

    used: int
    limit: int
    reset_after: float

    @property
    def remaining(self) -> int:
        """Units still available in this window."""
        return max(0, self.limit - self.used)


def _check_arguments(cost: int, limit: int, window_seconds: int) -> None:
    if cost < 1 or limit < 1 or window_seconds < 1:
        raise ValueError("cost, limit and window_seconds must be positive")
    if cost > limit:
        raise CostOverLimitError(
            f"this request counts {cost} units but the limit is {limit} per {window_seconds} s; split it",
            metadata={"cost": str(cost), "limit": str(limit)},
        )


def check_rate_limit(session: Session, key_id: str, family: str, cost: int, limit: int,
                     window_seconds: int) -> Quota:
    """Spend `cost` units of `key_id`'s `limit` per window on `family`, or refuse without spending.

    Raises:
        RateLimitError: over the limit (429), `retry_after` = seconds until the window ends.
        CostOverLimitError: `cost` alone exceeds `limit` (400): no wait would let it through.
    """
    _check_arguments(cost, limit, window_seconds)
    row = session.execute(_SPEND, {"key_id": key_id, "family": family, "cost": cost, "limit": limit,
                                   "window": window_seconds}).one()
    reset_after = min(float(window_seconds), max(0.0, float(row.reset_after)))
    if row.used is None:
        raise RateLimitError(
            f"rate limit of {limit} per {window_seconds} s exceeded for '{family}'; retry later",
            retry_after=float(max(1, math.ceil(reset_after))),
            metadata={"family": family, "limit": str(limit), "window_seconds": str(window_seconds)},
        )
    return Quota(used=int(row.used), limit=limit, reset_after=reset_after)


def enforce_rate_limit(key_id: str, family: str, cost: int, limit: int, window_seconds: int) -> Quota:
    """`check_rate_limit` in its own transaction, committed before the request's real work starts."""
    with session_scope() as session:
        return check_rate_limit(session, key_id, family, cost, limit, window_seconds)


def prune_rate_limits(session: Session, older_than_seconds: int = 3600) -> int:
    """Delete windows that started more than `older_than_seconds` ago; returns how many went."""
    result = session.execute(_PRUNE, {"age": older_than_seconds})
    return int(getattr(result, "rowcount", 0) or 0)
