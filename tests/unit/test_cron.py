"""Cron firings in real timezones: daylight-saving changes neither skip nor double a run."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.scheduling import cron

NY = cron.parse_timezone("America/New_York")
SPRING = datetime(2026, 3, 8, 5, 0, tzinfo=UTC)  # 2026-03-08 00:00 EST; 02:00 -> 03:00
FALL = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)  # 2026-11-01 23:00 EDT the day before; 02:00 -> 01:00


def local(times: list[datetime]) -> list[str]:
    return [t.astimezone(NY).strftime("%d %H:%M %Z") for t in times]


def test_hourly_cron_neither_skips_nor_doubles_on_spring_forward() -> None:
    assert local(cron.firings("0 * * * *", NY, SPRING, 4)) == ["08 01:00 EST", "08 03:00 EDT", "08 04:00 EDT",
                                                               "08 05:00 EDT"]


def test_a_daily_time_inside_the_gap_fires_once_shifted_by_the_gap() -> None:
    assert local(cron.firings("30 2 * * *", NY, SPRING, 2)) == ["08 03:30 EDT", "09 02:30 EDT"]


def test_a_daily_time_in_the_repeated_hour_fires_once_on_fall_back() -> None:
    assert local(cron.firings("30 1 * * *", NY, FALL, 2)) == ["01 01:30 EDT", "02 01:30 EST"]


def test_half_hourly_cron_on_fall_back_fires_each_wall_time_once() -> None:
    times = cron.firings("*/30 * * * *", NY, FALL, 8)
    assert len(set(times)) == 8 and times == sorted(times)
    assert local(times)[2:6] == ["01 00:30 EDT", "01 01:00 EDT", "01 01:30 EDT", "01 02:00 EST"]


def test_utc_cron_is_plain() -> None:
    utc = cron.parse_timezone("UTC")
    assert cron.next_after("15 9 * * 1", utc, datetime(2026, 11, 26, tzinfo=UTC)) == datetime(
        2026, 11, 30, 9, 15, tzinfo=UTC)


@pytest.mark.parametrize("expression", ["* * * *", "* * * * * *", "61 * * * *", "hello", "*/0 * * * *"])
def test_invalid_cron_expressions_are_refused(expression: str) -> None:
    assert not cron.is_valid_cron(expression)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../etc/passwd", "UTC+25"])
def test_unknown_timezones_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        cron.parse_timezone(name)


def test_min_interval_detects_too_frequent_crons() -> None:
    assert cron.min_interval_seconds("*/5 * * * *", NY, SPRING) == 300
    assert cron.min_interval_seconds("0 9 * * *", NY, SPRING) >= 23 * 3600


@settings(max_examples=60, deadline=None)
@given(
    minute=st.sampled_from(["0", "15", "30", "*/20", "5,35"]),
    hour=st.sampled_from(["*", "1", "2", "0-3", "*/2"]),
    zone=st.sampled_from(["America/New_York", "Europe/Paris", "Australia/Lord_Howe", "America/Sao_Paulo"]),
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
)
def test_firings_strictly_increase_and_match_the_cron_in_wall_time(minute: str, hour: str, zone: str,
                                                                   start: datetime) -> None:
    tz = cron.parse_timezone(zone)
    times = cron.firings(f"{minute} {hour} * * *", tz, start, 30)
    assert all(a < b for a, b in pairwise(times))
    assert times[0] > start
