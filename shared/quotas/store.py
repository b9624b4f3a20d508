"""Budgets in PostgreSQL: read without a lock, write by compare-and-swap on `version`.

The row lock a write takes lasts one UPDATE and the commit right after it: every caller puts the
swap last in its transaction, so no claimer ever waits on another's work, only on its commit. A lost
race re-reads and tries again; nothing is held while it does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.config import get_settings
from shared.quotas.budget import Budget, Closed, fresh, roll
from shared.quotas.spec import Quota
from shared.telemetry import metrics

T = TypeVar("T")
_log = logging.getLogger("genmedia.quotas")
SWAP_ATTEMPTS = 20

_READ = text("""
SELECT CAST(extract(epoch FROM clock_timestamp()) AS float8) AS now, b.*
FROM (SELECT 1) AS one LEFT JOIN quota_budgets AS b ON b.model = :model
""")
_INSERT = text("""
INSERT INTO quota_budgets (model, version, tat, window_start, window_seconds, limit_calls, admitted,
                           admitted_sync, deferred, refused_sync, cut_window)
VALUES (:model, 1, :tat, :window_start, :window_seconds, :limit, :admitted, :admitted_sync, :deferred,
        :refused_sync, :cut_window)
ON CONFLICT (model) DO NOTHING
""")
_UPDATE = text("""
UPDATE quota_budgets SET version = version + 1, tat = :tat, window_start = :window_start,
    window_seconds = :window_seconds, limit_calls = :limit, admitted = :admitted,
    admitted_sync = :admitted_sync, deferred = :deferred, refused_sync = :refused_sync,
    cut_window = :cut_window, updated_at = now()
WHERE model = :model AND version = :version
""")


class BudgetContendedError(Exception):
    """The swap lost SWAP_ATTEMPTS races in a row (never seen with eight claimers; a bug otherwise)."""


def quota_for(model: str) -> Quota | None:
    return get_settings().vertex_quotas.get(model)


def read(session: Session, model: str) -> tuple[Budget, float, Closed | None]:
    """(the budget rolled to the current window, the database clock, the window it closed)."""
    row = session.execute(_READ, {"model": model}).mappings().one()
    now, quota = float(row["now"]), quota_for(model)
    if row["model"] is None:
        return fresh(model, now, quota), now, None
    stored = Budget(model, row["version"], row["tat"], row["window_start"], row["window_seconds"],
                    row["limit_calls"], row["admitted"], row["admitted_sync"], row["deferred"],
                    row["refused_sync"], row["cut_window"])
    rolled, closed = roll(stored, now, quota)
    return rolled, now, closed


def swap(session: Session, before: Budget, after: Budget) -> bool:
    """Store `after` if the row is still at `before.version`; False when someone else moved first."""
    values = asdict(after)
    values["limit"] = values.pop("limit")
    if before.version == 0:
        result = session.execute(_INSERT, values)
    else:
        result = session.execute(_UPDATE, {**values, "version": before.version})
    return bool(getattr(result, "rowcount", 0) == 1)


def log_closed(closed: Closed | None, waiting: int | None = None) -> None:
    """The one line per window per model: what it admitted, deferred and refused."""
    if closed is None:
        return
    _log.info("vertex quota window %s: %d admitted, %d deferred", closed.model,
              closed.admitted + closed.admitted_sync, closed.deferred + closed.refused_sync, extra={
                  "model": closed.model,
                  "window_start": datetime.fromtimestamp(closed.window_start, UTC).isoformat(),
                  "limit": round(closed.limit, 2) if closed.limit is not None else None,
                  "admitted": closed.admitted + closed.admitted_sync, "admitted_batch": closed.admitted,
                  "admitted_sync": closed.admitted_sync, "deferred": closed.deferred + closed.refused_sync,
                  "deferred_batch": closed.deferred, "refused_sync": closed.refused_sync, "waiting": waiting})
    metrics.record(metrics.VERTEX_DEFERRED, value=closed.deferred + closed.refused_sync, model=closed.model)


def update(session: Session, model: str, change: Callable[[Budget, float], tuple[Budget, T]]) -> T:
    """Apply `change(budget, now)` by compare-and-swap, again on a lost race; the swap is the last
    statement, so call this last in the transaction (the row lock then lasts until the commit only)."""
    for _ in range(SWAP_ATTEMPTS):
        before, now, closed = read(session, model)
        after, result = change(before, now)
        if after == before and closed is None and before.version:
            return result
        if swap(session, before, after):
            log_closed(closed)
            return result
    raise BudgetContendedError(model)
