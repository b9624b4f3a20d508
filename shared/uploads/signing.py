"""Upload URLs: a V4 signed PUT URL of Cloud Storage, bound to the declared type and size.

Cloud Functions have no private key to sign with, so the signature is made by IAM `signBlob` on the
function's own service account (google-cloud-storage does that when given `service_account_email`
and `access_token`): one IAM call per upload created, none per byte. The URL signs `Content-Type` and
`x-goog-content-length-range: N,N`, so Cloud Storage itself refuses a PUT of another type or size.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from shared.exceptions import ServiceUnavailableError
from shared.uploads.store import GcsUploadStore

__all__ = ["UploadSigningError", "put_headers", "signed_put_url"]

_lock = threading.Lock()
_credentials: Any = None


class UploadSigningError(ServiceUnavailableError):
    """The upload URL could not be signed (IAM signBlob or the credentials failed); try again."""

    reason = "UPLOAD_SIGNING_UNAVAILABLE"
    default_message = "an upload URL could not be made now; try again later"


def put_headers(mime_type: str, size_bytes: int) -> dict[str, str]:
    """The headers the PUT must carry (the cloud URL signs them; the local route checks them)."""
    return {"Content-Type": mime_type, "x-goog-content-length-range": f"{size_bytes},{size_bytes}"}


def _default_credentials() -> Any:
    """Application Default Credentials, refreshed when expired (they carry the token signBlob needs)."""
    global _credentials
    import google.auth
    import google.auth.transport.requests

    with _lock:
        if _credentials is None:
            _credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        if not _credentials.valid:
            _credentials.refresh(google.auth.transport.requests.Request())
        return _credentials


def signed_put_url(store: GcsUploadStore, object_name: str, mime_type: str, size_bytes: int, *,
                   ttl_seconds: float, credentials: Any = None, endpoint: str | None = None) -> str:
    """A V4 signed URL to PUT `object_name` once, with exactly this type and size, for `ttl_seconds`.

    `credentials` that can sign locally (a service-account key, in tests) skip signBlob.
    `endpoint` replaces https://storage.googleapis.com (a stand-in in tests).
    """
    blob = store.client().bucket(store.bucket).blob(object_name)
    options: dict[str, Any] = {
        "version": "v4", "method": "PUT", "expiration": timedelta(seconds=ttl_seconds),
        "content_type": mime_type,
        "headers": {"x-goog-content-length-range": f"{size_bytes},{size_bytes}"},
    }
    if endpoint:
        options["api_access_endpoint"] = endpoint
    try:
        if credentials is not None:
            return str(blob.generate_signed_url(credentials=credentials, **options))
        signer = _default_credentials()
        email = getattr(signer, "service_account_email", None)
        if not email or email == "default":
            raise UploadSigningError(detail="the credentials name no service account to sign with")
        return str(blob.generate_signed_url(service_account_email=email, access_token=signer.token, **options))
    except UploadSigningError:
        raise
    except Exception as exc:  # IAM, metadata server or transport: one retryable outcome to the caller
        raise UploadSigningError(detail=f"signing failed: {type(exc).__name__}") from exc
