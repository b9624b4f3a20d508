"""Error bodies in Google's AIP-193 shape, built only from what an exception says is public."""

from __future__ import annotations

import math
from typing import Any

from shared.exceptions import GenmediaError
from shared.masking import mask_text

_TYPE = "type.googleapis.com/google.rpc."
DOMAIN = "genmedia"


def retry_after_seconds(err: GenmediaError) -> int | None:
    """Whole seconds for the `Retry-After` header (at least 1), or None when not retryable."""
    if err.retry_after is None and err.http_status not in (429, 503):
        return None
    return max(1, math.ceil(err.retry_after or 1))


def _public_message(err: GenmediaError) -> str:
    """The message, masked. A field error's `field: description` is masked part by part: joined,
    our own words read like a secret (`page_token: is not a token` -> `page_token: [REDACTED] ...`)."""
    if err.violations:
        first = err.violations[0]
        if err.message == f"{first.field}: {first.description}":
            return f"{mask_text(first.field)}: {mask_text(first.description)}"
    return mask_text(err.message)


def error_body(err: GenmediaError, request_id: str | None) -> dict[str, Any]:
    """The `{"error": {...}}` body for `err`: code, status, message, and typed details.

    Messages and field names can carry what a client sent (a JSON key, an id from the path), so
    everything textual is masked: an error never reflects a secret back.
    """
    metadata = {k: mask_text(v) for k, v in err.metadata.items()}
    details: list[dict[str, Any]] = [
        {"@type": _TYPE + "ErrorInfo", "reason": err.reason, "domain": DOMAIN, "metadata": metadata}
    ]
    if err.violations:
        details.append(
            {
                "@type": _TYPE + "BadRequest",
                "fieldViolations": [
                    {"field": mask_text(v.field), "description": mask_text(v.description)}
                    for v in err.violations
                ],
            }
        )
    retry_after = retry_after_seconds(err)
    if retry_after is not None:
        details.append({"@type": _TYPE + "RetryInfo", "retryDelay": f"{retry_after}s"})
    if request_id:
        details.append({"@type": _TYPE + "RequestInfo", "requestId": request_id})
    return {
        "error": {
            "code": err.http_status,
            "status": err.grpc_status,
            "message": _public_message(err),
            "details": details,
        }
    }
