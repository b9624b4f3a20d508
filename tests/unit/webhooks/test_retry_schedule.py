"""The retry schedule: close to Standard Webhooks' (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), over a day."""

from __future__ import annotations

import random

import pytest

from shared.webhooks.deliveries import MAX_ATTEMPTS, RETRY_DELAYS, next_retry_delay
from shared.webhooks.transport import parse_retry_after

SPEC = [5, 300, 1800, 7200, 18000, 36000, 36000]


def test_each_delay_is_within_ten_percent_of_the_spec() -> None:
    rng = random.Random(7)
    for attempt, expected in enumerate(SPEC, start=1):
        for _ in range(50):
            delay = next_retry_delay(attempt, None, rng)
            assert delay is not None and expected * 0.9 <= delay <= expected * 1.1


def test_retries_span_at_least_a_day_then_stop() -> None:
    assert sum(RETRY_DELAYS) * 0.9 >= 24 * 3600
    assert next_retry_delay(MAX_ATTEMPTS, None) is None
    assert next_retry_delay(MAX_ATTEMPTS - 1, None) is not None


def test_retry_after_is_honoured_when_longer_than_the_schedule() -> None:
    delay = next_retry_delay(1, 120.0)
    assert delay == 120.0
    shorter = next_retry_delay(2, 1.0)
    assert shorter is not None and shorter >= 270
    assert next_retry_delay(1, 10 ** 9) == 86_400.0


@pytest.mark.parametrize(("header", "seconds"), [
    ("120", 120.0), (" 7 ", 7.0), ("Wed, 02 Dec 2026 00:01:00 GMT", 60.0), ("soon", None), ("", None),
    (None, None), ("-5", None),
])
def test_retry_after_header(header: str | None, seconds: float | None) -> None:
    now = 1_796_169_600.0  # Wed, 02 Dec 2026 00:00:00 GMT
    assert parse_retry_after(header, now=now) == seconds
