"""Where generated media lands in Cloud Storage, and the upload of bytes that Vertex AI sent back."""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any

from shared.exceptions import VertexAIError
from shared.media.request import Kind, MediaOutput

if TYPE_CHECKING:
    from google.cloud import storage  # type: ignore[attr-defined]

_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "video/mp4": ".mp4"}


class OutputStorageError(VertexAIError):
    """The generated media could not be written to OUTPUT_BUCKET; the generation may be retried."""

    reason = "OUTPUT_STORAGE_UNAVAILABLE"
    default_message = "the generated media could not be stored; try again later"


def check_job_id(job_id: str) -> str:
    """`job_id`, refused unless it is a safe path segment (it names folders and objects)."""
    if not _JOB_ID.match(job_id):
        raise ValueError("job_id must be 1-128 letters, digits, '-' or '_'")
    return job_id


def job_prefix(kind: Kind, job_id: str) -> str:
    """The folder of one job's outputs, e.g. `videos/<job_id>/`."""
    return f"{kind}s/{check_job_id(job_id)}/"


class OutputStore:
    """gs://OUTPUT_BUCKET/<kind>s/<job_id>/...: the folder Vertex writes to, and our uploads."""

    def __init__(self, bucket: str, project: str) -> None:
        self.bucket = bucket
        self._project = project
        self._client: storage.Client | None = None
        self._lock = threading.Lock()

    def folder_uri(self, kind: Kind, job_id: str) -> str:
        """The gs:// folder a job's outputs go to (Vertex's `storageUri`)."""
        return f"gs://{self.bucket}/{job_prefix(kind, job_id)}"

    def upload(self, kind: Kind, job_id: str, index: int, data: bytes, mime_type: str, *,
               timeout: float) -> MediaOutput:
        """Store one output's bytes; the same job, index and bytes always land on the same object."""
        name = f"{job_prefix(kind, job_id)}{index}{EXTENSIONS.get(mime_type, '')}"
        budget = max(timeout, 1.0)
        try:
            from google.cloud.storage.retry import DEFAULT_RETRY

            blob = self._bucket().blob(name)
            # The library retries for 120 s by default; our caller's deadline is what is left.
            blob.upload_from_string(
                data, content_type=mime_type, timeout=budget, retry=DEFAULT_RETRY.with_timeout(budget)
            )
        except Exception as exc:  # any storage failure is one retryable outcome to our callers
            raise OutputStorageError(detail=f"upload of {name} failed: {type(exc).__name__}") from exc
        return MediaOutput(uri=f"gs://{self.bucket}/{name}", mime_type=mime_type)

    def _bucket(self) -> Any:
        with self._lock:
            if self._client is None:
                # Imported here: google.cloud.storage costs cold-start time that local runs never need.
                from google.cloud import storage  # type: ignore[attr-defined]

                # STORAGE_EMULATOR_HOST is read by the client itself (and then needs no credentials).
                self._client = storage.Client(project=self._project)
            return self._client.bucket(self.bucket)
