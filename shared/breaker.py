"""A circuit breaker per upstream model that fails fast while Vertex AI is down, without a call lock.

Only state changes take the lock; the wrapped call runs outside it, so concurrent calls through a
closed breaker run concurrently (pybreaker holds its lock around the call and serialises them).

What an outcome means to the breaker:
- failure: an exception with `retryable = True` (5xx, timeout: the `VertexAIError` family),
  or a builtin `TimeoutError`/`ConnectionError` that escaped translation. `failure_threshold`
  consecutive failures open the breaker.
- success: a return, or an error with `retryable = False` (content filtered, a 400): the upstream
  answered coherently, so it is up; this resets the streak, and closes a half-open breaker.
- neutral: a quota refusal (429: the upstream is up, we asked too often; `shared.quotas` paces and
  adapts to it), or anything else (a bug of ours), says nothing about the upstream's health.
Open: every call fails fast with `CircuitOpenError` until `reset_timeout` has passed; then half-open:
exactly one probe goes through (others still fail fast); its outcome closes or reopens the breaker.
Outcomes of calls started before the last state change are ignored, so a slow call that began while
closed cannot close a breaker that opened meanwhile.

State is per instance: sharing it through PostgreSQL would put a database round trip in front of
every Vertex call to save each instance a handful of failed calls while it learns on its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, TypeVar

from shared.exceptions import QuotaExceededError, ServiceUnavailableError

__all__ = [
    "CircuitBreaker",
    "CircuitOpenError",
    "breaker_for",
    "configure_breakers",
    "reset_breakers",
    "states",
]

P = ParamSpec("P")
T = TypeVar("T")
State = Literal["closed", "open", "half_open"]
Outcome = Literal["failure", "success", "neutral"]

DEFAULT_FAILURE_THRESHOLD = 5
DEFAULT_RESET_TIMEOUT = 30.0
# While a probe is in flight other callers are told to come back this soon, not after a full timeout.
_PROBE_RETRY_AFTER = 1.0


class CircuitOpenError(ServiceUnavailableError):
    """The upstream failed repeatedly and calls to it are paused; retry after `retry_after` seconds."""

    reason = "CIRCUIT_OPEN"
    retryable = True
    default_message = "the generation service is failing; calls are paused, try again later"


def _outcome(exc: BaseException) -> Outcome:
    if isinstance(exc, (CircuitOpenError, QuotaExceededError)):
        return "neutral"
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return "failure"
    retryable = getattr(exc, "retryable", None)
    if retryable is True:
        return "failure"
    return "success" if retryable is False else "neutral"


def _check_thresholds(failure_threshold: int, reset_timeout: float) -> None:
    if failure_threshold < 1 or reset_timeout <= 0:
        raise ValueError("failure_threshold must be >= 1 and reset_timeout > 0")


@dataclass(frozen=True)
class _Ticket:
    generation: int
    probe: bool


class CircuitBreaker:
    """Closed -> open after consecutive retryable failures -> half-open single probe -> closed."""

    def __init__(self, name: str, *, failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
                 reset_timeout: float = DEFAULT_RESET_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        _check_thresholds(failure_threshold, reset_timeout)
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._state: State = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probe_started: float | None = None
        # Bumped on every state change; a call's outcome only counts in the generation it began in.
        self._generation = 0

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn` unless the breaker is open; raises CircuitOpenError instead of calling it."""
        ticket = self._admit()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._record(ticket, _outcome(exc))
            raise
        self._record(ticket, "success")
        return result

    def _admit(self) -> _Ticket:
        with self._lock:
            if self._state == "closed":
                return _Ticket(self._generation, probe=False)
            now = self._clock()
            remaining = self._opened_at + self.reset_timeout - now
            if self._state == "open" and remaining > 0:
                raise CircuitOpenError(retry_after=remaining, detail=f"circuit {self.name} is open")
            # A probe that hung for a whole reset_timeout no longer blocks the next one.
            if self._probe_started is not None and now - self._probe_started < self.reset_timeout:
                raise CircuitOpenError(retry_after=_PROBE_RETRY_AFTER,
                                       detail=f"circuit {self.name} is half-open, probing")
            self._transition("half_open")
            self._probe_started = now
            return _Ticket(self._generation, probe=True)

    def _record(self, ticket: _Ticket, outcome: Outcome) -> None:
        with self._lock:
            if ticket.generation != self._generation:
                return
            if outcome == "success":
                self._failures = 0
                if self._state == "half_open":
                    self._transition("closed")
            elif outcome == "failure":
                self._failures += 1
                if self._state == "half_open" or self._failures >= self.failure_threshold:
                    self._transition("open")
            elif ticket.probe:
                self._probe_started = None  # let the next caller probe instead

    def _transition(self, state: State) -> None:
        self._state = state
        self._generation += 1
        self._probe_started = None
        if state == "open":
            self._opened_at = self._clock()
        elif state == "closed":
            self._failures = 0

    def snapshot(self) -> dict[str, Any]:
        """State for /readyz: `state`, consecutive failures, and seconds until a probe may go."""
        with self._lock:
            remaining = max(0.0, self._opened_at + self.reset_timeout - self._clock())
            state: State = "half_open" if self._state == "open" and remaining == 0 else self._state
            return {
                "state": state,
                "consecutive_failures": self._failures,
                "retry_after": round(remaining, 3) if state == "open" else 0.0,
            }


_registry: dict[str, CircuitBreaker] = {}
_registry_lock = threading.Lock()
_config: dict[str, Any] = {}


def configure_breakers(failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
                       reset_timeout: float = DEFAULT_RESET_TIMEOUT,
                       clock: Callable[[], float] | None = None) -> None:
    """Set the thresholds of every breaker, existing or future (and, for tests, new breakers' clock)."""
    _check_thresholds(failure_threshold, reset_timeout)
    with _registry_lock:
        _config.clear()
        _config.update(failure_threshold=failure_threshold, reset_timeout=reset_timeout)
        if clock is not None:
            _config["clock"] = clock
        for breaker in _registry.values():
            breaker.failure_threshold, breaker.reset_timeout = failure_threshold, reset_timeout


def breaker_for(name: str) -> CircuitBreaker:
    """The breaker of one upstream (a model id), built on first use with the configured thresholds."""
    with _registry_lock:
        breaker = _registry.get(name)
        if breaker is None:
            breaker = _registry[name] = CircuitBreaker(name, **_config)
        return breaker


def states() -> dict[str, dict[str, Any]]:
    """Every breaker's snapshot by name, for /readyz."""
    with _registry_lock:
        breakers = list(_registry.values())
    return {b.name: b.snapshot() for b in breakers}


def reset_breakers() -> None:
    """Forget every breaker and configuration (tests)."""
    with _registry_lock:
        _registry.clear()
        _config.clear()
