"""What every genmedia OpenAPI document shares: the AIP-193 `Error` schema, error responses, the
auth schemes, and the `Idempotency-Key` / `X-Request-Id` headers.

The `Error` models describe what `shared.aip193.error_body` builds (a test holds them together), and
each error response's example is `error_body` run on a real exception, so neither can drift.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.aip193 import error_body
from shared.exceptions import (
    ForbiddenError,
    GenmediaError,
    IdempotencyKeyReusedError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    ServiceUnavailableError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
    ValidationError,
)

_RPC = "type.googleapis.com/google.rpc."
_STRICT = ConfigDict(extra="forbid", populate_by_name=True)

# The google.rpc.Code names each HTTP status may carry; a test checks every GenmediaError against it.
GRPC_CODES: dict[int, tuple[str, ...]] = {
    400: ("INVALID_ARGUMENT", "FAILED_PRECONDITION"), 401: ("UNAUTHENTICATED",), 403: ("PERMISSION_DENIED",),
    404: ("NOT_FOUND",), 405: ("UNIMPLEMENTED",), 409: ("ABORTED", "ALREADY_EXISTS"), 413: ("OUT_OF_RANGE",),
    415: ("INVALID_ARGUMENT",), 429: ("RESOURCE_EXHAUSTED",), 500: ("INTERNAL",), 503: ("UNAVAILABLE",),
}
RETRYABLE_STATUSES = (429, 503)


class ErrorInfo(BaseModel):
    """Why it failed: a stable UPPER_SNAKE `reason` to branch on, and public metadata."""

    model_config = _STRICT

    type: Literal["type.googleapis.com/google.rpc.ErrorInfo"] = Field(alias="@type")
    reason: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    domain: Literal["genmedia"]
    metadata: dict[str, str]


class FieldViolation(BaseModel):
    """One bad field, named by its path (`items[3].prompt`)."""

    model_config = _STRICT

    field: str
    description: str


class BadRequest(BaseModel):
    """Every bad field of a request."""

    model_config = _STRICT

    type: Literal["type.googleapis.com/google.rpc.BadRequest"] = Field(alias="@type")
    fieldViolations: list[FieldViolation] = Field(min_length=1)


class RetryInfo(BaseModel):
    """How long to wait before retrying (the same as `Retry-After`)."""

    model_config = _STRICT

    type: Literal["type.googleapis.com/google.rpc.RetryInfo"] = Field(alias="@type")
    retryDelay: str = Field(pattern=r"^[0-9]+s$")


class RequestInfo(BaseModel):
    """The request id (also in `X-Request-Id`) to quote when asking about this error."""

    model_config = _STRICT

    type: Literal["type.googleapis.com/google.rpc.RequestInfo"] = Field(alias="@type")
    requestId: str


Detail = Annotated[ErrorInfo | BadRequest | RetryInfo | RequestInfo, Field(discriminator="type")]
_ONE_ERROR_INFO: dict[str, Any] = {
    "contains": {"$ref": "#/components/schemas/ErrorInfo"}, "minContains": 1, "maxContains": 1}


class ErrorStatus(BaseModel):
    """google.rpc.Status: `code` is the HTTP status, `status` its google.rpc.Code name."""

    model_config = _STRICT

    code: int = Field(ge=400, le=599)
    status: Literal[tuple(sorted({c for codes in GRPC_CODES.values() for c in codes}))]  # type: ignore[valid-type]
    message: str
    details: list[Detail] = Field(json_schema_extra=_ONE_ERROR_INFO)  # exactly one ErrorInfo


class Error(BaseModel):
    """Every non-2xx body, from every route (AIP-193)."""

    model_config = _STRICT

    error: ErrorStatus


_EXAMPLES: dict[int, GenmediaError] = {
    400: ValidationError.for_field("prompt", "must not be empty"),
    401: UnauthorizedError("an API key is required: send it as a Bearer token in the Authorization header"),
    403: ForbiddenError("the API key lacks the 'batch' scope this route needs"),
    404: NotFoundError("generation gen_0123456789abcdef0123456789abcdef not found"),
    405: MethodNotAllowedError("method PUT is not allowed here"),
    409: IdempotencyKeyReusedError(),
    413: PayloadTooLargeError("the request body is over 1048576 bytes"),
    415: UnsupportedMediaTypeError("Content-Type must be application/json"),
    429: RateLimitError(retry_after=12),
    500: GenmediaError(),
    503: ServiceUnavailableError("the database is unavailable; try again shortly", retry_after=2),
}
_DESCRIPTIONS = {
    400: "Not valid: every bad field is named in the BadRequest detail.",
    401: "No API key, or one that is not valid (`WWW-Authenticate` says which).",
    403: "The API key is revoked, expired, or lacks this route's scope.",
    404: "No such resource, or it belongs to another API key.",
    405: "The path exists, not with this method (`Allow` lists those it has).",
    409: "The `Idempotency-Key` was used before with a different body.",
    413: "The body is over `MAX_REQUEST_BYTES`.",
    415: "The body is not `application/json`.",
    429: "Rate limited (per key and route family), or the generation quota is spent: see `Retry-After`.",
    500: "Unexpected: the body holds no detail; the logs do, under the request id.",
    503: "A dependency is unavailable (database, Vertex AI, Pub/Sub): retry after `Retry-After`.",
}


def error_response(status: int) -> dict[str, Any]:
    """The components/responses entry for one error status: the Error schema pinned to this code."""
    pinned = {"properties": {"error": {"properties": {"code": {"const": status},
                                                      "status": {"enum": list(GRPC_CODES[status])}}}}}
    headers: dict[str, Any] = {"X-Request-Id": {"$ref": "#/components/headers/XRequestId"}}
    if status in RETRYABLE_STATUSES:
        headers["Retry-After"] = {"$ref": "#/components/headers/RetryAfter"}
    if status in (401, 403):
        headers["WWW-Authenticate"] = {"description": "RFC 6750 challenge", "schema": {"type": "string"}}
    example = error_body(_EXAMPLES[status], "4bf92f3577b34da6a3ce929d0e0e4736")
    return {
        "description": _DESCRIPTIONS[status],
        "headers": headers,
        "content": {"application/json": {
            "schema": {"allOf": [{"$ref": "#/components/schemas/Error"}, pinned]}, "example": example}},
    }


SECURITY_SCHEMES: dict[str, Any] = {
    "bearerAuth": {
        "type": "http", "scheme": "bearer", "bearerFormat": "gm_<key id>_<secret>",
        "description": "An API key from `make api-key` or `genmedia api-key create`. Scopes: `generate`, "
                       "`batch`, `schedule`, and `admin`, which implies every scope; each operation's "
                       "security requirement names the scope it needs.",
    },
    "cloudSchedulerOidc": {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "Cloud Scheduler's OIDC token (issuer, audience, expiry and service account checked).",
    },
}
PARAMETERS: dict[str, Any] = {
    "IdempotencyKey": {
        "name": "Idempotency-Key", "in": "header", "required": False,
        "description": "The same key and body return the same resource (200, `Idempotent-Replayed: true`); "
                       "the same key with another body is a 409. Empty means none.",
        "schema": {"type": "string", "maxLength": 255, "pattern": "^[!-~]*$"},
        "example": "fox-1",
    },
    "RequestId": {
        "name": "X-Request-Id", "in": "header", "required": False,
        "description": "Echoed on the response when 8-128 of `A-Za-z0-9._:-`; otherwise one is generated.",
        "schema": {"type": "string"},
    },
}
HEADERS: dict[str, Any] = {
    "XRequestId": {"description": "The request id, as sent or generated; also in logs and errors.",
                   "required": True, "schema": {"type": "string", "minLength": 1}},
    "RetryAfter": {"description": "Whole seconds to wait before retrying.", "required": True,
                   "schema": {"type": "string", "pattern": "^[0-9]+$"}},
}
API_DESCRIPTION = (
    "Generative media (Imagen, Gemini image, Veo) on Vertex AI. Every `/v1` route needs "
    "`Authorization: Bearer <api key>`. Every non-2xx answer is Google's AIP-193 `Error`, with one "
    "`ErrorInfo` whose `reason` is stable; 429 and 503 carry `Retry-After` and a `RetryInfo` detail."
)
