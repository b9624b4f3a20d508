"""The budget's transitions, on plain values: pacing, the synchronous share, windows and AIMD."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.quotas.budget import Budget, admit_sync, free_slots, fresh, refuse, reserve, roll
from shared.quotas.spec import Quota, parse_quotas

QUOTA = Quota(calls=10, seconds=60)  # one slot every 6 s
T0 = 6_000.0  # a window start (multiple of 60)


def budget(**changes: object) -> Budget:
    return replace(fresh("imagen", T0, QUOTA), version=1, **changes)  # type: ignore[arg-type]


def test_batch_slots_are_spaced_evenly_and_handed_out_only_up_to_the_horizon() -> None:
    start = budget()
    assert start.horizon == 12.0  # two slots
    after, slots = reserve(start, T0, 100)
    assert slots == [T0, T0 + 6, T0 + 12]
    assert after.tat == T0 + 18 and after.admitted == 3
    assert reserve(after, T0 + 1, 5)[1] == []  # the horizon is full: nothing until time passes
    later, more = reserve(after, T0 + 6, 5)
    assert more == [T0 + 18] and later.tat == T0 + 24


def test_slots_lost_while_idle_are_not_banked_into_a_burst() -> None:
    after, _ = reserve(budget(), T0, 1)
    _, slots = reserve(after, T0 + 600, 100)
    assert slots == [T0 + 600, T0 + 606, T0 + 612]


def test_the_sync_share_goes_first_then_answers_with_the_time_to_the_next_window() -> None:
    start = budget(tat=T0 + 12)  # batch slots taken up to the horizon
    first, wait = admit_sync(start, T0 + 10, share=0.2)
    assert wait is None and first.admitted_sync == 1
    assert first.tat == T0 + 18  # the batch waits one slot behind it
    second, wait = admit_sync(first, T0 + 11, share=0.2)
    assert wait is None and second.admitted_sync == 2  # 20% of 10 = 2 calls per window
    third, wait = admit_sync(second, T0 + 15, share=0.2)
    assert wait == 45.0 and third.refused_sync == 1 and third.tat == second.tat


def test_an_unpaced_model_admits_everything_now() -> None:
    start = fresh("gemini-x", T0, None)
    assert start.limit is None and free_slots(start, T0) == 500
    assert reserve(start, T0, 3)[1] == [T0] * 3
    assert admit_sync(start, T0, share=0.2)[1] is None


def test_a_429_cuts_the_limit_once_per_window_and_clean_windows_give_it_back() -> None:
    cut = refuse(budget(), T0 + 1, sync=False)
    assert cut.limit == pytest.approx(7.0) and cut.deferred == 1
    again = refuse(cut, T0 + 2, sync=False)
    assert again.limit == pytest.approx(7.0) and again.deferred == 2  # same window: one cut
    next_window, closed = roll(again, T0 + 61, QUOTA)
    assert closed is not None and closed.deferred == 2
    assert next_window.limit == pytest.approx(7.0)  # the window that cut gives nothing back
    recovered, _ = roll(next_window, T0 + 121, QUOTA)
    assert recovered.limit == pytest.approx(8.0)  # a tenth of the ceiling per clean window
    for minute in range(3, 10):
        recovered, _ = roll(recovered, T0 + 60 * minute + 1, QUOTA)
    assert recovered.limit == 10.0  # never above the configured quota


def test_a_model_without_a_quota_starts_pacing_at_its_first_429_from_what_succeeded() -> None:
    start = fresh("veo-x", T0, None)
    cut = refuse(start, T0, sync=False, observed=40)
    assert cut.limit == pytest.approx(28.0) and cut.window_seconds == 60.0
    small = refuse(start, T0, sync=True, observed=1)
    assert small.limit == pytest.approx(7.0) and small.refused_sync == 1  # never below a first guess of 10


def test_a_window_with_nothing_admitted_closes_without_a_log_line() -> None:
    rolled, closed = roll(budget(), T0 + 61, QUOTA)
    assert closed is None and rolled.window_start == T0 + 60
    used, _ = reserve(rolled, T0 + 61, 1)
    assert roll(used, T0 + 125, QUOTA)[1] is not None


def test_a_lower_configured_quota_applies_at_once() -> None:
    rolled, _ = roll(budget(), T0 + 1, Quota(calls=5, seconds=60))
    assert rolled.limit == 5 and rolled.spacing == 12.0


@pytest.mark.parametrize("value", ["imagen=0/60", "imagen=-1/60", "imagen=60", "imagen=60/0", "imagen",
                                   "imagen=1/2,", "a=1/2,a=3/4", "imagen=x/60", "=1/2"])
def test_bad_quota_syntax_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="must"):
        parse_quotas(value)


def test_quotas_parse_with_spaces_and_fractions() -> None:
    assert parse_quotas(" imagen-4.0-generate-001=60/60 , veo-3.0-generate-001=0.5/1") == {
        "imagen-4.0-generate-001": Quota(60, 60), "veo-3.0-generate-001": Quota(0.5, 1)}
