"""The circuit breaker: opens on retryable failures, fails fast, probes once, closes, never serialises."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared import breaker
from shared.breaker import CircuitBreaker, CircuitOpenError
from shared.exceptions import (
    ContentFilteredError,
    QuotaExceededError,
    UpstreamTimeoutError,
    VertexAIError,
)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    breaker.reset_breakers()
    yield
    breaker.reset_breakers()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def fail(exc: BaseException) -> None:
    raise exc


def ok() -> str:
    return "ok"


def trip(cb: CircuitBreaker, times: int, exc: BaseException | None = None) -> None:
    for _ in range(times):
        with pytest.raises(VertexAIError):
            cb.call(fail, exc or VertexAIError())


def test_opens_after_threshold_consecutive_retryable_failures(clock: FakeClock) -> None:
    cb = CircuitBreaker("m", failure_threshold=3, reset_timeout=30, clock=clock)
    trip(cb, 2, VertexAIError())
    assert cb.snapshot()["state"] == "closed"
    trip(cb, 1, UpstreamTimeoutError())
    assert cb.snapshot()["state"] == "open"


def test_quota_refusals_neither_open_nor_reset_the_breaker(clock: FakeClock) -> None:
    """A 429 says the upstream is up and we asked too often: the pacer's business, not the breaker's."""
    cb = CircuitBreaker("m", failure_threshold=2, reset_timeout=30, clock=clock)
    trip(cb, 5, QuotaExceededError())
    assert cb.snapshot() == {"state": "closed", "consecutive_failures": 0, "retry_after": 0.0}
    trip(cb, 1, UpstreamTimeoutError())
    trip(cb, 1, QuotaExceededError())
    trip(cb, 1, UpstreamTimeoutError())
    assert cb.snapshot()["state"] == "open"


def test_open_breaker_fails_fast_without_calling_and_says_when_to_retry(clock: FakeClock) -> None:
    cb = CircuitBreaker("m", failure_threshold=2, reset_timeout=30, clock=clock)
    trip(cb, 2)
    clock.advance(10)
    calls: list[int] = []
    with pytest.raises(CircuitOpenError) as caught:
        cb.call(lambda: calls.append(1))
    assert calls == []
    err = caught.value
    assert (err.http_status, err.reason, err.retryable) == (503, "CIRCUIT_OPEN", True)
    assert err.retry_after == pytest.approx(20)


def test_success_resets_the_failure_streak(clock: FakeClock) -> None:
    cb = CircuitBreaker("m", failure_threshold=3, reset_timeout=30, clock=clock)
    trip(cb, 2)
    assert cb.call(ok) == "ok"
    trip(cb, 2)
    assert cb.snapshot() == {"state": "closed", "consecutive_failures": 2, "retry_after": 0.0}


def test_non_retryable_upstream_errors_count_as_an_answer_not_a_failure(clock: FakeClock) -> None:
    cb = CircuitBreaker("m", failure_threshold=2, reset_timeout=30, clock=clock)
    trip(cb, 1)
    for _ in range(5):
        trip(cb, 1, ContentFilteredError())
    assert cb.snapshot()["state"] == "closed"
    assert cb.snapshot()["consecutive_failures"] == 0


def test_bugs_of_ours_neither_count_nor_reset(clock: FakeClock) -> None:
    cb = CircuitBreaker("m", failure_threshold=2, reset_timeout=30, clock=clock)
    trip(cb, 1)
    with pytest.raises(KeyError):
        cb.call(fail, KeyError("x"))
    assert cb.snapshot()["consecutive_failures"] == 1
    trip(cb, 1)
    assert cb.snapshot()["state"] == "open"


def test_half_open_lets_exactly_one_probe_through_under_concurrency(clock: FakeClock) -> None:
    cb = CircuitBreaker("m", failure_threshold=1, reset_timeout=5, clock=clock)
    trip(cb, 1)
    clock.advance(5)
    release, entered = threading.Event(), threading.Event()

    def probe() -> str:
        entered.set()
        release.wait(5)
        return "probed"

    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(cb.call, probe)
        assert entered.wait(5)
        assert cb.snapshot()["state"] == "half_open"
        rejected = 0
        with ThreadPoolExecutor(max_workers=8) as others:
            for future in [others.submit(cb.call, ok) for _ in range(16)]:
                with pytest.raises(CircuitOpenError):
                    future.result()
                rejected += 1
        release.set()
        assert first.result() == "probed"
    assert rejected == 16
    assert cb.snapshot()["state"] == "closed"
    assert cb.call(ok) == "ok"


def test_failed_probe_reopens_for_another_full_timeout(clock: FakeClock) -> None:
    cb = CircuitBreaker("m", failure_threshold=3, reset_timeout=5, clock=clock)
    trip(cb, 3)
    clock.advance(5)
    trip(cb, 1)
    snapshot = cb.snapshot()
    assert snapshot["state"] == "open"
    assert snapshot["retry_after"] == pytest.approx(5)


def test_closes_after_recovery_and_counts_from_zero_again(clock: FakeClock) -> None:
    cb = CircuitBreaker("m", failure_threshold=2, reset_timeout=5, clock=clock)
    trip(cb, 2)
    clock.advance(6)
    assert cb.call(ok) == "ok"
    assert cb.snapshot()["state"] == "closed"
    trip(cb, 1)
    assert cb.snapshot()["state"] == "closed"


def test_a_probe_ending_in_our_own_bug_frees_the_slot_for_the_next_caller(clock: FakeClock) -> None:
    cb = CircuitBreaker("m", failure_threshold=1, reset_timeout=5, clock=clock)
    trip(cb, 1)
    clock.advance(5)
    with pytest.raises(KeyError):
        cb.call(fail, KeyError("x"))
    assert cb.call(ok) == "ok"
    assert cb.snapshot()["state"] == "closed"


def test_a_hung_probe_does_not_block_probing_forever(clock: FakeClock) -> None:
    cb = CircuitBreaker("m", failure_threshold=1, reset_timeout=5, clock=clock)
    trip(cb, 1)
    clock.advance(5)
    release, entered = threading.Event(), threading.Event()

    def hung() -> str:
        entered.set()
        release.wait(5)
        return "late"

    with ThreadPoolExecutor(max_workers=1) as pool:
        stuck = pool.submit(cb.call, hung)
        assert entered.wait(5)
        clock.advance(5)
        trip(cb, 1)  # the second probe fails and reopens
        release.set()
        assert stuck.result() == "late"
    # The hung probe's late success belongs to an older state and must not close the breaker.
    assert cb.snapshot()["state"] == "open"


def test_a_slow_call_that_began_while_closed_cannot_close_an_open_breaker(clock: FakeClock) -> None:
    cb = CircuitBreaker("m", failure_threshold=1, reset_timeout=5, clock=clock)
    release, entered = threading.Event(), threading.Event()

    def slow() -> str:
        entered.set()
        release.wait(5)
        return "late"

    with ThreadPoolExecutor(max_workers=1) as pool:
        late = pool.submit(cb.call, slow)
        assert entered.wait(5)
        trip(cb, 1)
        release.set()
        assert late.result() == "late"
    assert cb.snapshot()["state"] == "open"


def test_concurrent_calls_through_a_closed_breaker_are_not_serialised() -> None:
    cb = breaker.breaker_for("imagen")

    # All four calls must be inside the breaker at once to pass the barrier; serialised, it breaks.
    inside_together = threading.Barrier(4, timeout=10)

    def call_inside() -> str:
        inside_together.wait()
        return "ok"

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: cb.call(call_inside), range(4)))
    assert results == ["ok"] * 4


def test_registry_builds_one_breaker_per_name_with_configured_thresholds(clock: FakeClock) -> None:
    breaker.configure_breakers(failure_threshold=2, reset_timeout=7, clock=clock)
    imagen = breaker.breaker_for("imagen-4.0")
    assert breaker.breaker_for("imagen-4.0") is imagen
    trip(imagen, 2)
    breaker.breaker_for("veo-3.0")
    assert breaker.states() == {
        "imagen-4.0": {"state": "open", "consecutive_failures": 2, "retry_after": 7.0},
        "veo-3.0": {"state": "closed", "consecutive_failures": 0, "retry_after": 0.0},
    }


def test_reconfiguring_applies_to_existing_breakers() -> None:
    cb = breaker.breaker_for("m")
    breaker.configure_breakers(failure_threshold=1, reset_timeout=60)
    trip(cb, 1)
    assert cb.snapshot()["state"] == "open"


def test_reset_breakers_forgets_every_breaker() -> None:
    trip(breaker.breaker_for("m"), breaker.DEFAULT_FAILURE_THRESHOLD)
    breaker.reset_breakers()
    assert breaker.states() == {}
    assert breaker.breaker_for("m").snapshot()["state"] == "closed"


def test_invalid_thresholds_are_refused() -> None:
    with pytest.raises(ValueError):
        breaker.configure_breakers(failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker("m", reset_timeout=0)
