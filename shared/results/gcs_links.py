"""V4-signed Cloud Storage URLs without a key file: the signature comes from IAM signBlob.

Cloud Functions run as a service account with no private key, so google-cloud-storage signs through
`iamcredentials.googleapis.com ... :signBlob` when given `service_account_email` and `access_token`
(the function's account needs `roles/iam.serviceAccountTokenCreator` on itself; Terraform grants it).
One signBlob per call; the access token comes from the runtime's credentials, refreshed about hourly,
so a download costs one Google call. Links are only signed when someone follows ours.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from shared.config import get_settings
from shared.exceptions import ServiceUnavailableError

__all__ = ["DownloadUnavailableError", "output_bucket", "reset_gcs_links", "signed_gcs_url"]

# A redirect is followed at once, but give the client a minute even when our link is about to end.
_MIN_SECONDS = 60
_lock = threading.Lock()
_state: dict[str, Any] = {}


class DownloadUnavailableError(ServiceUnavailableError):
    """Cloud Storage or IAM could not sign the download just now; follow the link again shortly."""

    reason = "DOWNLOAD_UNAVAILABLE"
    default_message = "the download cannot be prepared right now; try the link again shortly"


def _credentials() -> Any:
    """The runtime's credentials, fresh: refreshed (one token call) only when expired."""
    with _lock:
        credentials = _state.get("credentials")
        if credentials is None:
            import google.auth

            credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
            _state["credentials"] = credentials
        if not credentials.valid:
            from google.auth.transport.requests import Request

            credentials.refresh(Request())
        return credentials


def output_bucket() -> Any:
    """OUTPUT_BUCKET as a google-cloud-storage bucket, built on first use and shared."""
    with _lock:
        bucket = _state.get("bucket")
        if bucket is None:
            from google.cloud import storage  # type: ignore[attr-defined]

            settings = get_settings()
            # STORAGE_EMULATOR_HOST is read by the client itself: signed URLs then point at the emulator.
            client = storage.Client(project=settings.google_cloud_project)
            bucket = _state["bucket"] = client.bucket(settings.output_bucket)
        return bucket


def signed_gcs_url(key: str, seconds: int) -> str:
    """A V4-signed GET URL of `key` in OUTPUT_BUCKET, valid `seconds` (at least a minute)."""
    settings = get_settings()
    try:
        credentials = _credentials()
        email = settings.download_signer_service_account or getattr(credentials, "service_account_email", None)
        if not email or not credentials.token:
            raise ValueError("no service account to sign as")
        url: str = output_bucket().blob(key).generate_signed_url(
            version="v4", expiration=timedelta(seconds=max(seconds, _MIN_SECONDS)), method="GET",
            service_account_email=email, access_token=credentials.token,
        )
    except Exception as exc:  # any auth, IAM or transport failure is one retryable outcome here
        raise DownloadUnavailableError(detail=f"signing {key} failed: {type(exc).__name__}") from exc
    return url


def reset_gcs_links() -> None:
    """Forget cached credentials and client (tests that change the environment between cases)."""
    with _lock:
        _state.clear()
