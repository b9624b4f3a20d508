"""The exception tree: every error genmedia raises on purpose, and what each one means outside.

Each class carries what the decorators need to translate it without deciding anything: the HTTP
status, the google.rpc code name, a stable UPPER_SNAKE `reason`, whether a retry can succeed, and a
public message that is safe to show. `detail` is internal: it reaches the logs, never a response.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "BatchProcessingError",
    "ConflictError",
    "ContentFilteredError",
    "DatabaseConnectionError",
    "DatabaseError",
    "FieldViolation",
    "ForbiddenError",
    "GenmediaError",
    "IdempotencyKeyReusedError",
    "ImagenGenerationError",
    "MethodNotAllowedError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PoolExhaustedError",
    "QueryError",
    "QuotaExceededError",
    "RateLimitError",
    "SchedulingError",
    "ServiceUnavailableError",
    "TransactionError",
    "UnauthorizedError",
    "UnsupportedMediaTypeError",
    "UpstreamTimeoutError",
    "ValidationError",
    "VeoGenerationError",
    "VertexAIError",
]


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request, as google.rpc.BadRequest.FieldViolation."""

    field: str
    description: str


class GenmediaError(Exception):
    """Base of every error we raise on purpose; anything else is a bug and answers 500."""

    http_status = 500
    grpc_status = "INTERNAL"
    reason = "INTERNAL"
    retryable = False
    default_message = "internal error"
    default_retry_after: float | None = None

    def __init__(
        self,
        message: str | None = None,
        *,
        detail: str | None = None,
        violations: list[FieldViolation] | None = None,
        retry_after: float | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.detail = detail
        self.violations = list(violations or [])
        self.retry_after = retry_after if retry_after is not None else self.default_retry_after
        self.metadata = dict(metadata or {})
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.message} ({self.detail})" if self.detail else self.message

    def to_record(self) -> dict[str, Any]:
        """The `{reason, message}` stored on a failed job; safe to show the job's owner."""
        return {"reason": self.reason, "message": self.message}


# --- Client errors -------------------------------------------------------------------------------


class ValidationError(GenmediaError):
    """The request is malformed or breaks a rule; fix the named fields and send it again."""

    http_status = 400
    grpc_status = "INVALID_ARGUMENT"
    reason = "VALIDATION_FAILED"
    default_message = "the request is not valid"

    @classmethod
    def from_violations(cls, violations: list[FieldViolation]) -> ValidationError:
        """One error for several bad fields; its message and metadata name the first."""
        first = violations[0]
        err = cls(f"{first.field}: {first.description}", violations=violations)
        err.metadata["field"] = first.field
        return err

    @classmethod
    def for_field(cls, field: str, description: str, *, reason: str | None = None) -> ValidationError:
        """A validation error about one field, with its field violation."""
        err = cls(f"{field}: {description}", violations=[FieldViolation(field, description)])
        err.metadata["field"] = field
        if reason:
            err.reason = reason
        return err


class UnauthorizedError(GenmediaError):
    """No credentials, or credentials we cannot read; send `Authorization: Bearer <api key>`."""

    http_status = 401
    grpc_status = "UNAUTHENTICATED"
    reason = "UNAUTHENTICATED"
    default_message = "a valid API key is required"


class ForbiddenError(GenmediaError):
    """The credentials are valid but may not do this (revoked, expired or missing the scope)."""

    http_status = 403
    grpc_status = "PERMISSION_DENIED"
    reason = "PERMISSION_DENIED"
    default_message = "the API key may not do this"


class NotFoundError(GenmediaError):
    """The resource does not exist, or belongs to someone else."""

    http_status = 404
    grpc_status = "NOT_FOUND"
    reason = "NOT_FOUND"
    default_message = "not found"


class MethodNotAllowedError(GenmediaError):
    """The route exists but not with this HTTP method."""

    http_status = 405
    grpc_status = "UNIMPLEMENTED"
    reason = "METHOD_NOT_ALLOWED"
    default_message = "method not allowed"


class ConflictError(GenmediaError):
    """The request conflicts with the current state of the resource."""

    http_status = 409
    grpc_status = "ABORTED"
    reason = "CONFLICT"
    default_message = "the request conflicts with the current state"


class IdempotencyKeyReusedError(ConflictError):
    """An `Idempotency-Key` was sent again with a different body; use a new key for a new request."""

    grpc_status = "ALREADY_EXISTS"
    reason = "IDEMPOTENCY_KEY_REUSED"
    default_message = "Idempotency-Key was already used with a different request body"


class PayloadTooLargeError(GenmediaError):
    """The body is over the size limit; send less per request (batches can be split)."""

    http_status = 413
    grpc_status = "OUT_OF_RANGE"
    reason = "PAYLOAD_TOO_LARGE"
    default_message = "the request body is too large"


class UnsupportedMediaTypeError(GenmediaError):
    """The body is not `application/json`."""

    http_status = 415
    grpc_status = "INVALID_ARGUMENT"
    reason = "UNSUPPORTED_MEDIA_TYPE"
    default_message = "the request body must be application/json"


class RateLimitError(GenmediaError):
    """The caller sent more than its limit; wait `Retry-After` seconds."""

    http_status = 429
    grpc_status = "RESOURCE_EXHAUSTED"
    reason = "RATE_LIMITED"
    retryable = True
    default_message = "too many requests"
    default_retry_after = 1.0


# --- Vertex AI -----------------------------------------------------------------------------------


class VertexAIError(GenmediaError):
    """Vertex AI failed in a way that may pass (5xx, network); retried with backoff, then 503."""

    http_status = 503
    grpc_status = "UNAVAILABLE"
    reason = "UPSTREAM_UNAVAILABLE"
    retryable = True
    default_message = "the generation service is unavailable; try again later"
    default_retry_after: float | None = 5.0


class UpstreamTimeoutError(VertexAIError):
    """Vertex AI did not answer inside our deadline; the request may be retried (503, not 504:
    our own deadline held, the service behind us is what was unavailable)."""

    reason = "UPSTREAM_TIMEOUT"
    default_message = "the generation service did not answer in time"


class QuotaExceededError(VertexAIError):
    """Vertex AI refused for quota (429 RESOURCE_EXHAUSTED); safe to retry later."""

    http_status = 429
    grpc_status = "RESOURCE_EXHAUSTED"
    reason = "UPSTREAM_QUOTA_EXCEEDED"
    default_message = "the generation quota is exhausted; try again later"
    default_retry_after = 30.0


class ImagenGenerationError(VertexAIError):
    """An image model rejected the request (its 400); retrying the same request cannot succeed."""

    http_status = 400
    grpc_status = "INVALID_ARGUMENT"
    reason = "IMAGE_GENERATION_REJECTED"
    retryable = False
    default_message = "the image model rejected the request"
    default_retry_after = None


class VeoGenerationError(VertexAIError):
    """A video model rejected the request or its operation ended in error; not retryable as is."""

    http_status = 400
    grpc_status = "INVALID_ARGUMENT"
    reason = "VIDEO_GENERATION_FAILED"
    retryable = False
    default_message = "the video model could not generate the video"
    default_retry_after = None


class ContentFilteredError(VertexAIError):
    """Responsible-AI filters blocked the prompt or every output; change the prompt."""

    http_status = 400
    grpc_status = "FAILED_PRECONDITION"
    reason = "CONTENT_FILTERED"
    retryable = False
    default_message = "the output was blocked by content filters"
    default_retry_after = None


# --- Batches and schedules -----------------------------------------------------------------------


class BatchProcessingError(GenmediaError):
    """A batch item could not be processed for a reason that a retry will not fix."""

    reason = "BATCH_PROCESSING_FAILED"
    default_message = "the batch item could not be processed"


class SchedulingError(GenmediaError):
    """A schedule could not be fired or advanced."""

    reason = "SCHEDULING_FAILED"
    default_message = "the schedule could not be processed"


# --- Database ------------------------------------------------------------------------------------


class DatabaseError(GenmediaError):
    """The database failed; the request did not change anything that was not committed."""

    reason = "DATABASE_ERROR"
    default_message = "internal error"


class DatabaseConnectionError(DatabaseError):
    """The database cannot be reached (down, restarting, network); retry shortly."""

    http_status = 503
    grpc_status = "UNAVAILABLE"
    reason = "DATABASE_UNAVAILABLE"
    retryable = True
    default_message = "the database is unavailable; try again shortly"
    default_retry_after = 2.0


class PoolExhaustedError(DatabaseError):
    """Every pooled connection stayed busy for DB_POOL_TIMEOUT seconds; the instance is overloaded."""

    http_status = 503
    grpc_status = "UNAVAILABLE"
    reason = "DATABASE_POOL_EXHAUSTED"
    retryable = True
    default_message = "the service is busy; try again shortly"
    default_retry_after = 1.0


class TransactionError(DatabaseError):
    """A transaction lost a serialization race or a deadlock; running it again can succeed."""

    http_status = 503
    grpc_status = "UNAVAILABLE"
    reason = "TRANSACTION_CONFLICT"
    retryable = True
    default_message = "a concurrent change interfered; try again"
    default_retry_after = 1.0


class QueryError(DatabaseError):
    """A statement failed for a reason a retry will not fix: a bug, never the caller's fault."""

    reason = "QUERY_FAILED"


class ServiceUnavailableError(GenmediaError):
    """A dependency is not ready (readiness checks); retry after the delay."""

    http_status = 503
    grpc_status = "UNAVAILABLE"
    reason = "NOT_READY"
    retryable = True
    default_message = "the service is not ready"
    default_retry_after = 5.0
