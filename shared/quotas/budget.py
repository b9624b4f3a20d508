"""One model's budget as a value: pure transitions, stored by compare-and-swap (see `store`).

Two mechanisms share one state:
- pacing: `tat` is the next free call slot (GCRA). Batch items take slots `spacing` apart, at most
  `horizon` ahead of now, so calls reach Vertex evenly spread whatever the push concurrency, and a
  quota window never sees more than its calls however its edges fall against ours;
- windows: fixed windows of the quota's length on the database clock count what was admitted and
  deferred (one log line each), cap synchronous generations at their share, and drive the AIMD
  adaptation: an unexpected Vertex 429 cuts the limit once per window (x0.7), each clean window
  gives back a tenth of the ceiling (or of the limit, for a model without a configured quota).
A synchronous call goes at once and pushes `tat` one slot on, so batch items wait behind it: the
reserve is a priority, and a batch uses the whole budget while nobody generates synchronously.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from shared.quotas.spec import Quota

DEFAULT_WINDOW_SECONDS = 60.0  # Vertex AI quotas are per minute; used for models with no VERTEX_QUOTAS entry
DECREASE = 0.7
INCREASE = 0.1
MIN_LIMIT = 1.0
# The first guess at an unknown quota never starts below Vertex AI's smallest default per-minute quotas.
MIN_FIRST_GUESS = 10.0
MIN_HORIZON, MAX_HORIZON = 2.0, 20.0


@dataclass(frozen=True)
class Closed:
    """What one finished window admitted and deferred, for its log line."""

    model: str
    window_start: float
    limit: float | None
    admitted: int
    admitted_sync: int
    deferred: int
    refused_sync: int


@dataclass(frozen=True)
class Budget:
    """The stored state of one model; times are seconds since the epoch on the database clock."""

    model: str
    version: int  # 0: not stored yet
    tat: float
    window_start: float
    window_seconds: float
    limit: float | None  # calls per window in effect; None: unpaced (no quota known, no 429 seen)
    admitted: int = 0
    admitted_sync: int = 0
    deferred: int = 0
    refused_sync: int = 0
    cut_window: float = -1.0

    @property
    def spacing(self) -> float:
        return self.window_seconds / self.limit if self.limit else 0.0

    @property
    def horizon(self) -> float:
        """How far ahead batch slots are handed out: two slots, within bounds (see module docstring)."""
        return min(MAX_HORIZON, max(MIN_HORIZON, 2 * self.spacing))

    @property
    def window_end(self) -> float:
        return self.window_start + self.window_seconds


def window_of(now: float, seconds: float) -> float:
    return math.floor(now / seconds) * seconds


def fresh(model: str, now: float, quota: Quota | None) -> Budget:
    """The state of a model never seen before."""
    seconds = quota.seconds if quota else DEFAULT_WINDOW_SECONDS
    return Budget(model, 0, now, window_of(now, seconds), seconds, quota.calls if quota else None)


def roll(budget: Budget, now: float, quota: Quota | None) -> tuple[Budget, Closed | None]:
    """The budget in the window holding `now` (configuration applied), and the window it closed."""
    seconds = quota.seconds if quota else budget.window_seconds
    limit = budget.limit
    if quota is not None:
        limit = quota.calls if limit is None else min(limit, quota.calls)
    start = window_of(now, seconds)
    budget = replace(budget, window_seconds=seconds, limit=limit)
    if start <= budget.window_start:
        return budget, None
    closed = Closed(budget.model, budget.window_start, limit, budget.admitted, budget.admitted_sync,
                    budget.deferred, budget.refused_sync)
    if limit is not None and budget.cut_window != budget.window_start:
        ceiling = quota.calls if quota else math.inf
        step = INCREASE * (quota.calls if quota else limit)
        limit = min(ceiling, limit + max(step, MIN_LIMIT))
    rolled = replace(budget, window_start=start, limit=limit, admitted=0, admitted_sync=0, deferred=0,
                     refused_sync=0)
    active = closed.admitted or closed.admitted_sync or closed.deferred or closed.refused_sync
    return rolled, closed if active else None


def reserve(budget: Budget, now: float, wanted: int) -> tuple[Budget, list[float]]:
    """Up to `wanted` batch slots within the horizon: (budget after, the slots' times)."""
    if wanted <= 0:
        return budget, []
    if budget.limit is None:
        return replace(budget, admitted=budget.admitted + wanted), [now] * wanted
    start, spacing = max(budget.tat, now), budget.spacing
    free = max(0, math.floor((now + budget.horizon - start) / spacing) + 1)
    slots = [start + i * spacing for i in range(min(free, wanted))]
    if not slots:
        return budget, []
    return replace(budget, tat=start + len(slots) * spacing, admitted=budget.admitted + len(slots)), slots


def free_slots(budget: Budget, now: float) -> int:
    """How many batch slots `reserve` would hand out now (unpaced: a large chunk)."""
    if budget.limit is None:
        return 500
    start = max(budget.tat, now)
    return max(0, math.floor((now + budget.horizon - start) / budget.spacing) + 1)


def sync_cap(budget: Budget, share: float) -> int:
    """Synchronous calls a window keeps for itself: the share of the limit, at least one if any."""
    if budget.limit is None or share <= 0:
        return 0
    return max(1, math.ceil(share * budget.limit - 1e-9))


def admit_sync(budget: Budget, now: float, share: float) -> tuple[Budget, float | None]:
    """A synchronous call now: (budget after, None) or (budget after, seconds to wait) when spent."""
    if budget.limit is None:
        return replace(budget, admitted_sync=budget.admitted_sync + 1), None
    if budget.admitted_sync >= sync_cap(budget, share):
        return replace(budget, refused_sync=budget.refused_sync + 1), max(0.0, budget.window_end - now)
    tat = max(budget.tat, now) + budget.spacing
    return replace(budget, tat=tat, admitted_sync=budget.admitted_sync + 1), None


def refuse(budget: Budget, now: float, *, sync: bool, observed: int = 0) -> Budget:
    """Vertex answered 429: count it, cut the limit once per window, and pause the next slot.

    `observed`: calls that succeeded over the last window, the first estimate of an unknown quota.
    """
    counted = replace(budget, refused_sync=budget.refused_sync + 1) if sync else replace(
        budget, deferred=budget.deferred + 1)
    if counted.cut_window == counted.window_start:
        return counted
    base = counted.limit if counted.limit is not None else max(MIN_FIRST_GUESS, observed)
    limit = max(MIN_LIMIT, base * DECREASE)
    cut = replace(counted, limit=limit, cut_window=counted.window_start)
    return replace(cut, tat=max(cut.tat, now) + cut.spacing)
