"""The batch queue: items wait in `jobs` until their model's budget admits them, owners taking turns.

The database is the queue and Pub/Sub the fan-out: an item is published only once it holds a call
slot, so push concurrency, however high, never turns into calls Vertex AI refuses. Admission runs
when a batch is created, when an item finishes (the pipeline refills itself at the pace of its own
completions) and on every tick (which restarts a queue whose last item died with its instance). One
dispatcher per model at a time, by a transaction-scoped `pg_try_advisory_xact_lock`: the others
return at once rather than wait, since the one running hands out every slot there is.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from shared.database import session_scope
from shared.outbox import enqueue_with_attributes
from shared.quotas import store
from shared.quotas.budget import free_slots, reserve

_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext('genmedia.quota:' || :model))")
# Round robin: each owner's items in submission order get turns 1, 2, 3...; turn by turn, the owner
# served longest ago goes first. Another owner's 10-item batch behind 10,000 items thus gets every
# other slot, not the slots after the 10,000.
_PICK = text("""
WITH queue AS (
    SELECT j.id, j.owner_id, j.batch_id, j.request,
           row_number() OVER (PARTITION BY j.owner_id ORDER BY j.created_at, j.batch_id, j.item_index) AS turn
    FROM jobs AS j
    WHERE j.model = :model AND j.status = 'queued' AND j.admitted_at IS NULL AND j.batch_id IS NOT NULL
)
SELECT q.id, q.owner_id, q.batch_id, q.request, coalesce(b.trace_attributes, '{}'::jsonb) AS attributes
FROM queue AS q
LEFT JOIN quota_owners AS o ON o.model = :model AND o.owner_id = q.owner_id
LEFT JOIN batches AS b ON b.id = q.batch_id
WHERE q.turn <= :wanted
ORDER BY q.turn, o.last_admitted NULLS FIRST, q.owner_id
LIMIT :wanted
""")
_ADMIT = text("""
UPDATE jobs SET admitted_at = to_timestamp(s.slot), updated_at = now()
FROM (SELECT unnest(CAST(:ids AS text[])) AS id, unnest(CAST(:slots AS float8[])) AS slot) AS s
WHERE jobs.id = s.id AND jobs.status = 'queued' AND jobs.admitted_at IS NULL
RETURNING jobs.id
""")
_TURNS = text("""
INSERT INTO quota_owners (model, owner_id, last_admitted)
SELECT :model, o.owner_id, o.slot
FROM (SELECT unnest(CAST(:owners AS text[])) AS owner_id, unnest(CAST(:slots AS float8[])) AS slot) AS o
ON CONFLICT (model, owner_id) DO UPDATE SET last_admitted = greatest(quota_owners.last_admitted, EXCLUDED.last_admitted)
""")
_ENDED = text("""
SELECT model FROM quota_budgets
WHERE window_start + window_seconds <= CAST(extract(epoch FROM clock_timestamp()) AS float8)
""")
_WAITING_MODELS = text("""
SELECT DISTINCT model FROM jobs WHERE status = 'queued' AND admitted_at IS NULL AND batch_id IS NOT NULL
""")


class _Retry(Exception):
    """Roll the attempt back and try again: an item was cancelled meanwhile, or the swap lost a race."""


def dispatch(model: str, topic: str) -> int:
    """Admit as many of `model`'s queued items as its budget has slots for now; returns how many.

    Their outbox rows commit with the admission; the caller publishes (`outbox.publish_pending`).
    """
    for _ in range(store.SWAP_ATTEMPTS):
        try:
            with session_scope() as session:
                return _dispatch_once(session, model, topic)
        except _Retry:
            continue
    return 0


def _dispatch_once(session: Session, model: str, topic: str) -> int:
    if not session.execute(_LOCK, {"model": model}).scalar():
        return 0
    budget, now, closed = store.read(session, model)
    wanted = free_slots(budget, now)
    picked = _pick(session, model, wanted) if wanted else []
    if not picked:
        if closed is not None and store.swap(session, budget, budget):
            store.log_closed(closed, waiting=0 if wanted else None)
        return 0
    after, slots = reserve(budget, now, len(picked))
    if _admit(session, model, picked[: len(slots)], slots, topic) != len(slots):
        raise _Retry()
    if not store.swap(session, budget, after):  # last: the budget row stays locked until the commit only
        raise _Retry()
    store.log_closed(closed)
    return len(slots)


def _pick(session: Session, model: str, wanted: int) -> list[Any]:
    return list(session.execute(_PICK, {"model": model, "wanted": wanted}).all())


def _admit(session: Session, model: str, picked: list[Any], slots: list[float], topic: str) -> int:
    ids = [row.id for row in picked]
    admitted = session.execute(_ADMIT.bindparams(bindparam("ids"), bindparam("slots")),
                               {"ids": ids, "slots": slots}).scalars().all()
    if len(admitted) != len(ids):
        return len(admitted)
    last: dict[str, float] = {}
    for row, slot in zip(picked, slots, strict=True):
        last[row.owner_id] = slot
    session.execute(_TURNS, {"model": model, "owners": list(last), "slots": list(last.values())})
    enqueue_with_attributes(session, topic, [
        ({"batch_id": row.batch_id, "item_id": row.id, "request": row.request}, dict(row.attributes or {}))
        for row in picked
    ])
    return len(admitted)


def dispatch_waiting(topic: str) -> int:
    """Dispatch every model with queued items (the tick); returns how many were admitted."""
    with session_scope() as session:
        models = list(session.execute(_WAITING_MODELS).scalars())
    return sum(dispatch(model, topic) for model in models)


def close_windows() -> int:
    """Roll every budget whose window has ended, logging each active one once (the tick)."""
    with session_scope() as session:
        models = list(session.execute(_ENDED).scalars())
    closed = 0
    for model in models:
        with session_scope() as session:
            budget, _, ended = store.read(session, model)
            if store.swap(session, budget, budget):
                store.log_closed(ended)
                closed += ended is not None
    return closed
