"""Admission to a model's budget: synchronous generations, batch items at the door, and 429s.

- `admit_sync`: a synchronous generation goes now, ahead of batch items, within its window's share;
  past it, `QuotaShareSpentError` (429 with the seconds to the next window) and no Vertex AI call.
- `take_slot`: a batch item's delivery learns how long to wait for its slot. A delivery that finds no
  slot (a stray duplicate, a message older than pacing) takes a free one or goes back to the queue.
- `defer_item`: Vertex AI answered 429 after all: the item goes back to the queue, its attempt
  refunded, and the budget is cut (AIMD, see `budget`). Never a failure, never a nack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.config import get_settings
from shared.database import session_scope
from shared.exceptions import GenmediaError
from shared.quotas import store
from shared.quotas.budget import DEFAULT_WINDOW_SECONDS, refuse, reserve
from shared.quotas.budget import admit_sync as admit_sync_call

__all__ = ["QuotaShareSpentError", "Slot", "admit_sync", "count_sync_refusal", "defer_item", "paced_models",
           "read_slot", "take_slot"]


class QuotaShareSpentError(GenmediaError):
    """The synchronous share of this model's Vertex AI budget is spent for this window; retry after it."""

    http_status = 429
    grpc_status = "RESOURCE_EXHAUSTED"
    reason = "VERTEX_QUOTA_EXHAUSTED"
    retryable = True
    default_message = "the Vertex AI quota for this model is spent for now; retry after the time given"


_ITEM = text("""
SELECT j.model, CAST(extract(epoch FROM j.admitted_at) AS float8) AS slot,
       CAST(extract(epoch FROM clock_timestamp()) AS float8) AS now, b.limit_calls IS NOT NULL AS learnt
FROM jobs AS j LEFT JOIN quota_budgets AS b ON b.model = j.model WHERE j.id = :id
""")
_SET_SLOT = text("UPDATE jobs SET admitted_at = to_timestamp(:slot) WHERE id = :id")
_REQUEUE = text("""
UPDATE jobs SET status = 'queued', admitted_at = NULL, lease_until = NULL, attempts = greatest(attempts - 1, 0),
    updated_at = now()
WHERE id = :id AND status = 'running' AND operation_name IS NULL
""")
_PACED = text("SELECT model FROM quota_budgets WHERE model = ANY(CAST(:models AS text[])) AND limit_calls IS NOT NULL")
_SUCCEEDED = text("""
SELECT count(*) FROM jobs
WHERE model = :model AND status IN ('succeeded', 'running')
  AND updated_at > clock_timestamp() - make_interval(secs => :seconds)
""")


def paced_models(session: Session, models: set[str]) -> set[str]:
    """The models whose calls are paced: a configured quota, or a limit learnt from 429s."""
    configured = {m for m in models if store.quota_for(m) is not None}
    rest = sorted(models - configured)
    learnt = set(session.execute(_PACED, {"models": rest}).scalars()) if rest else set()
    return configured | learnt


def admit_sync(session: Session, model: str) -> None:
    """Take a synchronous call slot now, as the last statement of the caller's transaction.

    Raises QuotaShareSpentError without writing anything (the caller's transaction rolls back; it
    then records the refusal with `count_sync_refusal`).
    """
    share = get_settings().vertex_quota_sync_share

    def change(budget: Any, now: float) -> tuple[Any, float | None]:
        after, wait = admit_sync_call(budget, now, share)
        return (budget, wait) if wait is not None else (after, None)

    wait = store.update(session, model, change)
    if wait is not None:
        raise QuotaShareSpentError(retry_after=max(1.0, wait),
                                   detail=f"synchronous share of {model} spent for this window")


def count_sync_refusal(model: str) -> None:
    """Count a synchronous request answered 429 in its window (the window's log line shows it)."""
    share = get_settings().vertex_quota_sync_share
    with session_scope() as session:
        store.update(session, model, lambda budget, now: (admit_sync_call(budget, now, share)[0], None))


@dataclass(frozen=True)
class Slot:
    """A claimed item's call slot: its model, whether that model is paced, and the seconds to wait
    (None: it holds no usable slot, see `take_slot`)."""

    model: str
    paced: bool
    wait: float | None


def read_slot(session: Session, job_id: str) -> Slot:
    """The claimed item's slot, read in the claim's own transaction (one statement)."""
    row = session.execute(_ITEM, {"id": job_id}).mappings().one()
    model = str(row["model"])
    quota = store.quota_for(model)
    paced = quota is not None or bool(row["learnt"])
    stale_after = quota.seconds if quota else DEFAULT_WINDOW_SECONDS
    if row["slot"] is not None and row["slot"] > row["now"] - stale_after:
        return Slot(model, paced, max(0.0, float(row["slot"] - row["now"])))
    if not paced:
        session.execute(_SET_SLOT, {"id": job_id, "slot": row["now"]})
        return Slot(model, paced, 0.0)
    return Slot(model, paced, None)


def take_slot(job_id: str, model: str) -> float | None:
    """A free slot now for an item that holds none (a stray or late delivery: a slot more than a window
    old was given up when the item was requeued); None: none free, the item is back in the queue."""
    with session_scope() as session:

        def change(budget: Any, now: float) -> tuple[Any, float | None]:
            after, slots = reserve(budget, now, 1)
            if not slots:
                return budget, None
            session.execute(_SET_SLOT, {"id": job_id, "slot": slots[0]})
            return after, slots[0] - now

        wait = store.update(session, model, change)
        if wait is None:
            session.execute(_REQUEUE, {"id": job_id})
        return wait


def defer_item(job_id: str, model: str) -> None:
    """Vertex AI refused the item's call for quota: back to the queue, attempt refunded, budget cut."""
    with session_scope() as session:
        session.execute(_REQUEUE, {"id": job_id})
        record_refusal(session, model, sync=False)


def record_refusal(session: Session, model: str, *, sync: bool) -> None:
    """A Vertex 429 for `model`, counted and fed to the AIMD cut (last statement of the transaction)."""
    observed = 0
    budget, _, _ = store.read(session, model)
    if budget.limit is None:
        observed = int(session.execute(_SUCCEEDED, {"model": model, "seconds": budget.window_seconds}).scalar_one())
    store.update(session, model, lambda b, now: (refuse(b, now, sync=sync, observed=observed), None))


def record_sync_refusal(model: str) -> None:
    """A synchronous generation that Vertex AI refused for quota (it answers 429 to its caller)."""
    with session_scope() as session:
        record_refusal(session, model, sync=True)
