"""When a batch with queued items should be done: its place in each model's round robin, at the pace
the model's budget allows now."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.quotas import store

_MODELS = text("""
SELECT model, count(*) FILTER (WHERE admitted_at IS NULL) AS waiting,
       CAST(extract(epoch FROM max(admitted_at)) AS float8) AS last_slot
FROM jobs WHERE batch_id = :batch_id AND status = 'queued' GROUP BY model
""")
# Per owner: its waiting items of the model, and (for the batch's owner) those up to this batch.
_TURNS = text("""
SELECT owner_id, count(*) AS waiting,
       count(*) FILTER (WHERE created_at <= :created_at) AS up_to_batch
FROM jobs
WHERE model = :model AND status = 'queued' AND admitted_at IS NULL AND batch_id IS NOT NULL
GROUP BY owner_id
""")


def estimate_completion(session: Session, batch_id: str, owner_id: str, created_at: datetime) -> datetime | None:
    """The time the batch's last queued item should get its slot, or None when none is queued."""
    latest: float | None = None
    for model, waiting, last_slot in session.execute(_MODELS, {"batch_id": batch_id}).all():
        budget, now, _ = store.read(session, model)
        done = max(now, float(last_slot)) if last_slot is not None else now
        if waiting and budget.limit is not None:
            turns = {row.owner_id: (row.waiting, row.up_to_batch) for row in
                     session.execute(_TURNS, {"model": model, "created_at": created_at}).all()}
            mine = turns.get(owner_id, (0, 0))[1]
            # Round robin: every other owner gets a turn for each of ours, as long as it has items.
            slots = mine + sum(min(count, mine) for owner, (count, _) in turns.items() if owner != owner_id)
            done = max(done, max(budget.tat, now) + slots * budget.spacing)
        latest = done if latest is None else max(latest, done)
    return datetime.fromtimestamp(latest, UTC) if latest is not None else None
