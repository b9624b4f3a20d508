"""The exception tree: what each error tells the decorators, and what it lets out."""

from __future__ import annotations

import builtins
import inspect
import re

import pytest

from shared import exceptions as ex
from shared.aip193 import error_body, retry_after_seconds

GRPC_CODES = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
}
ALL_ERRORS = [
    obj for _, obj in inspect.getmembers(ex, inspect.isclass)
    if issubclass(obj, ex.GenmediaError)
]


def test_every_error_descends_from_one_root() -> None:
    assert len(ALL_ERRORS) >= 25
    for cls in ALL_ERRORS:
        assert issubclass(cls, ex.GenmediaError)


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
def test_every_error_says_when_it_is_raised(cls: type[ex.GenmediaError]) -> None:
    assert cls.__doc__ and len(cls.__doc__.strip()) > 20


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
def test_status_is_a_real_grpc_code_and_reason_is_upper_snake(cls: type[ex.GenmediaError]) -> None:
    assert cls.grpc_status in GRPC_CODES
    assert re.fullmatch(r"[A-Z][A-Z0-9_]+", cls.reason)
    assert 400 <= cls.http_status <= 599


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
def test_retryable_errors_tell_when_to_retry(cls: type[ex.GenmediaError]) -> None:
    err = cls()
    if cls.http_status in (429, 503):
        assert cls.retryable
        assert retry_after_seconds(err) is not None and retry_after_seconds(err) >= 1


def test_reasons_are_unique_per_class() -> None:
    reasons = [c.reason for c in ALL_ERRORS]
    assert len(reasons) == len(set(reasons))


def test_connection_error_does_not_shadow_the_builtin() -> None:
    assert not hasattr(ex, "ConnectionError")
    assert issubclass(ex.DatabaseConnectionError, ex.DatabaseError)
    assert builtins.ConnectionError is not ex.DatabaseConnectionError
    assert not issubclass(ex.DatabaseConnectionError, builtins.ConnectionError)


def test_default_message_is_public_and_detail_stays_internal() -> None:
    err = ex.QueryError(detail="ProgrammingError: relation jobs does not exist")
    body = error_body(err, "req-1")
    assert body["error"]["message"] == "internal error"
    assert "relation" not in str(body)
    assert "relation" in str(err)


def test_str_without_detail_is_the_message() -> None:
    assert str(ex.NotFoundError("job not found")) == "job not found"


def test_for_field_carries_a_field_violation_and_metadata() -> None:
    err = ex.ValidationError.for_field("prompt", "must not be empty")
    assert err.message == "prompt: must not be empty"
    assert err.violations == [ex.FieldViolation("prompt", "must not be empty")]
    assert err.metadata == {"field": "prompt"}
    assert err.reason == "VALIDATION_FAILED"


def test_for_field_can_override_the_reason_per_instance() -> None:
    err = ex.ValidationError.for_field("body", "is not valid JSON", reason="INVALID_JSON")
    assert err.reason == "INVALID_JSON"
    assert ex.ValidationError.reason == "VALIDATION_FAILED"


def test_retry_after_can_be_given_per_instance() -> None:
    err = ex.QuotaExceededError(retry_after=12.2)
    assert retry_after_seconds(err) == 13


def test_quota_is_retryable_and_vertex_rejections_are_not() -> None:
    assert ex.QuotaExceededError.retryable and ex.QuotaExceededError.http_status == 429
    for cls in (ex.ImagenGenerationError, ex.VeoGenerationError, ex.ContentFilteredError):
        assert issubclass(cls, ex.VertexAIError)
        assert not cls.retryable
        assert retry_after_seconds(cls()) is None


def test_database_errors_map_to_503_only_when_transient() -> None:
    assert ex.PoolExhaustedError.http_status == 503 and ex.PoolExhaustedError.retryable
    assert ex.TransactionError.retryable
    assert ex.DatabaseConnectionError.retryable
    assert ex.QueryError.http_status == 500 and not ex.QueryError.retryable


def test_to_record_is_what_a_failed_job_shows() -> None:
    assert ex.ContentFilteredError().to_record() == {
        "reason": "CONTENT_FILTERED",
        "message": "the output was blocked by content filters",
    }


def test_error_body_has_the_aip193_shape() -> None:
    err = ex.ValidationError.for_field("prompt", "must not be empty")
    body = error_body(err, "abc123")["error"]
    assert body["code"] == 400 and body["status"] == "INVALID_ARGUMENT"
    types = [d["@type"].rsplit(".", 1)[1] for d in body["details"]]
    assert types == ["ErrorInfo", "BadRequest", "RequestInfo"]
    assert body["details"][0] == {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "VALIDATION_FAILED",
        "domain": "genmedia", "metadata": {"field": "prompt"},
    }


def test_error_body_carries_retry_info_for_429_and_503() -> None:
    for err in (ex.RateLimitError(), ex.PoolExhaustedError()):
        details = error_body(err, None)["error"]["details"]
        retry = [d for d in details if d["@type"].endswith("RetryInfo")]
        assert retry and re.fullmatch(r"\d+s", retry[0]["retryDelay"])
        assert not [d for d in details if d["@type"].endswith("RequestInfo")]


def test_errors_can_be_raised_and_caught_by_their_family() -> None:
    with pytest.raises(ex.VertexAIError):
        raise ex.QuotaExceededError()
    with pytest.raises(ex.DatabaseError):
        raise ex.PoolExhaustedError()
    with pytest.raises(ex.ConflictError):
        raise ex.IdempotencyKeyReusedError()


def test_from_violations_names_the_first_field_and_keeps_all() -> None:
    violations = [ex.FieldViolation("items[0].prompt", "must not be empty"),
                  ex.FieldViolation("items[2].model", "is not a known model")]
    err = ex.ValidationError.from_violations(violations)
    assert err.message == "items[0].prompt: must not be empty"
    assert err.violations == violations and err.metadata == {"field": "items[0].prompt"}
