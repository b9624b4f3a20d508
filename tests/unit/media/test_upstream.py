"""Retries inside a deadline and the mapping of google-genai and HTTP failures onto our tree."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx2
import pytest
from google.genai import errors

from shared.exceptions import (
    ImagenGenerationError,
    QuotaExceededError,
    UpstreamTimeoutError,
    VeoGenerationError,
    VertexAIError,
)
from shared.media.upstream import RetryPolicy, call_with_retry, classify, sanitise

FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.02, max_attempts=5, min_attempt_seconds=0.01)


def raised(code: int, status: str = "X", message: str = "m", headers: dict[str, str] | None = None
           ) -> Exception:
    """The google-genai error the SDK raises for an HTTP `code` answer with this body and headers."""
    body = {"error": {"code": code, "status": status, "message": message}}
    try:
        errors.APIError.raise_error(code, body, httpx2.Response(code, headers=headers or {}, json=body))
    except errors.APIError as exc:
        return exc
    raise AssertionError("raise_error did not raise")


def failing(*failures: BaseException, then: str = "ok") -> tuple[Callable[[float], str], list[float]]:
    """A call that raises `failures` in turn, then returns `then`; and the time budgets it was given."""
    budgets: list[float] = []
    pending = list(failures)

    def call(left: float) -> str:
        budgets.append(left)
        if pending:
            raise pending.pop(0)
        return then

    return call, budgets


def run(call: Callable[[float], str], *, seconds: float = 2.0, idempotent: bool = True,
        rejected: type[VertexAIError] = ImagenGenerationError, policy: RetryPolicy = FAST) -> str:
    return call_with_retry(call, deadline=time.monotonic() + seconds, policy=policy, rejected=rejected,
                           idempotent=idempotent, what="test")


def test_sanitise_removes_tokens_urls_and_project_ids_and_keeps_it_short() -> None:
    text = (
        "Request had invalid credentials Bearer ya29.a0AfH6SMC-secret for projects/acme-prod-123/locations/x "
        "see https://console.cloud.google.com/apis?project=acme key=AIzaSyA1234567890abcdefghijklmnop " * 5
    )
    clean = sanitise(text, limit=200)
    assert "ya29" not in clean and "AIza" not in clean and "acme" not in clean and "https://" not in clean
    assert len(clean) <= 200 and clean.endswith("…")
    assert "\n" not in sanitise("two\nlines")


def test_sanitise_drops_media_bytes_quoted_in_a_message() -> None:
    png_base64 = "iVBORw0KGgoAAAANSUhEUgAAAEAAAABACAIAAAAlC+aJAAAA" * 3
    assert sanitise(f"1 validation error: value='{png_base64}'") == "1 validation error: value='[data]'"
    assert sanitise("veo-3.0-fast-generate-001 Support codes: 15236754") == (
        "veo-3.0-fast-generate-001 Support codes: 15236754"
    )


@pytest.mark.parametrize(("exc", "expected", "retry"), [
    (raised(429, "RESOURCE_EXHAUSTED"), QuotaExceededError, True),
    (raised(503, "UNAVAILABLE"), VertexAIError, True),
    (raised(500, "INTERNAL"), VertexAIError, True),
    (raised(504, "DEADLINE_EXCEEDED"), UpstreamTimeoutError, True),
    (raised(400, "INVALID_ARGUMENT"), ImagenGenerationError, False),
    (raised(404, "NOT_FOUND"), ImagenGenerationError, False),
    (raised(403, "PERMISSION_DENIED"), VertexAIError, False),
    (httpx2.ConnectError("refused"), VertexAIError, True),
    (httpx2.ReadTimeout("slow"), UpstreamTimeoutError, True),
    (ValueError("unparseable response"), VertexAIError, False),
])
def test_failures_map_onto_the_exception_tree(exc: Exception, expected: type[Exception], retry: bool) -> None:
    failure = classify(exc, rejected=ImagenGenerationError, idempotent=True)
    assert type(failure.error) is expected
    assert failure.retry is retry


def test_a_request_that_may_have_reached_vertex_is_not_resent_unless_idempotent() -> None:
    def retried(exc: Exception) -> bool:
        return classify(exc, rejected=VeoGenerationError, idempotent=False).retry

    assert not retried(httpx2.ReadTimeout("x"))
    assert not retried(httpx2.RemoteProtocolError("x"))
    # Never sent: safe to retry even for :predictLongRunning.
    assert retried(httpx2.ConnectError("x"))
    assert retried(httpx2.ConnectTimeout("x"))


def test_a_model_rejection_keeps_the_upstream_message_sanitised() -> None:
    exc = raised(400, "INVALID_ARGUMENT", "Prompt rejected, see https://example.com/x?token=abc Code 1")
    error = classify(exc, rejected=VeoGenerationError, idempotent=True).error
    assert error.message == "the video model could not generate the video: Prompt rejected, see [url] Code 1"
    assert error.reason == "VIDEO_GENERATION_FAILED" and not error.retryable


def test_transient_failures_are_retried_until_success() -> None:
    call, budgets = failing(raised(429), raised(503), httpx2.ConnectError("x"))
    assert run(call) == "ok"
    assert len(budgets) == 4
    assert budgets == sorted(budgets, reverse=True), "each attempt gets what is left of one deadline"


def test_a_rejection_is_not_retried() -> None:
    call, budgets = failing(raised(400, "INVALID_ARGUMENT", "bad prompt"))
    with pytest.raises(ImagenGenerationError):
        run(call)
    assert len(budgets) == 1


def test_attempts_are_bounded() -> None:
    call, budgets = failing(*[raised(503) for _ in range(10)])
    with pytest.raises(VertexAIError) as caught:
        run(call)
    assert len(budgets) == FAST.max_attempts
    assert caught.value.reason == "UPSTREAM_UNAVAILABLE" and caught.value.retryable


def test_persistent_quota_ends_as_quota_exceeded_with_retry_after_from_the_header() -> None:
    call, _ = failing(*[raised(429, headers={"Retry-After": "0.05"}) for _ in range(10)])
    with pytest.raises(QuotaExceededError) as caught:
        run(call)
    assert caught.value.retry_after == 0.05
    assert caught.value.http_status == 429


def test_retry_after_beyond_the_deadline_gives_up_at_once() -> None:
    call, budgets = failing(raised(503, headers={"Retry-After": "30"}), raised(503))
    started = time.monotonic()
    with pytest.raises(VertexAIError) as caught:
        run(call, seconds=1.0)
    assert len(budgets) == 1 and time.monotonic() - started < 10, "it would have slept the 30 s"
    assert caught.value.retry_after == 30


def test_backoff_grows_exponentially_with_jitter_and_stays_capped() -> None:
    policy = RetryPolicy(initial_backoff=0.2, max_backoff=1.0)
    for attempt, ceiling in [(1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (9, 1.0)]:
        waits = [policy.backoff(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1, "jitter spreads retries of concurrent callers"


def test_the_deadline_bounds_the_whole_call() -> None:
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=0.2, max_attempts=100, min_attempt_seconds=0.05)
    call, budgets = failing(*[httpx2.ReadTimeout("x") for _ in range(100)])
    started = time.monotonic()
    with pytest.raises(UpstreamTimeoutError):
        run(call, seconds=0.6, policy=policy)
    assert time.monotonic() - started < 0.6 + 3
    assert 2 <= len(budgets) < 10
