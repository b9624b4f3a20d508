"""Where upload bytes live, and reads of any input object: Cloud Storage in the cloud, files locally.

Uploads go to `uploads/<upload_id>` beside the outputs (gs://OUTPUT_BUCKET/uploads/..., or
LOCAL_DATA_DIR/uploads/...), so one bucket lifecycle rule expires them and no other bucket is read.
"""

from __future__ import annotations

import os
import tempfile
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from shared.exceptions import ServiceUnavailableError
from shared.uploads.images import Reader

if TYPE_CHECKING:
    from shared.config import Settings

UPLOAD_PREFIX = "uploads/"
_COPY_CHUNK = 1024 * 1024


class InputStorageError(ServiceUnavailableError):
    """Cloud Storage did not answer while an input picture was looked at; the request may be retried."""

    reason = "INPUT_STORAGE_UNAVAILABLE"
    default_message = "an input picture could not be read now; try again later"


@dataclass(frozen=True)
class ObjectStat:
    """What the store says about an object: its size and the Content-Type it was stored with."""

    size: int
    content_type: str | None


class UploadStore(ABC):
    """The store of one deployment (see `store_for`)."""

    @abstractmethod
    def upload_uri(self, upload_id: str) -> str:
        """The URI the upload's bytes live at (what a model is given)."""

    @abstractmethod
    def stat(self, uri: str) -> ObjectStat | None:
        """Size and type of the object at `uri`, or None when there is none (never PUT, or expired)."""

    @abstractmethod
    def reader(self, uri: str) -> Reader:
        """Ranged reads of the object at `uri` (only the headers are ever read)."""

    @abstractmethod
    def owns(self, uri: str) -> str | None:
        """The object path inside this store (`images/gen_x/0.png`) for a URI of it, else None."""


class LocalUploadStore(UploadStore):
    """LOCAL_DATA_DIR, for GENERATION_BACKEND=local: the generation function receives the PUT itself."""

    def __init__(self, root: str) -> None:
        self.root = Path(root).resolve()

    def upload_uri(self, upload_id: str) -> str:
        return (self.root / UPLOAD_PREFIX / upload_id).as_uri()

    def owns(self, uri: str) -> str | None:
        parts = urlsplit(uri)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            return None
        path = Path(unquote(parts.path))
        if ".." in path.parts or not path.is_relative_to(self.root):
            return None
        return path.relative_to(self.root).as_posix()

    def _path(self, uri: str) -> Path:
        relative = self.owns(uri)
        if relative is None:
            raise ValueError("not an object of this store")
        return self.root / relative

    def stat(self, uri: str) -> ObjectStat | None:
        try:
            return ObjectStat(self._path(uri).stat().st_size, None)
        except (OSError, ValueError):
            return None

    def reader(self, uri: str) -> Reader:
        path = self._path(uri)

        def read(offset: int, length: int) -> bytes:
            with path.open("rb") as handle:
                handle.seek(offset)
                return handle.read(length)

        return read

    def receive(self, upload_id: str, stream: IO[bytes], limit: int) -> tuple[Path, int]:
        """Copy at most `limit` + 1 bytes of `stream` to a temporary file; (its path, bytes read)."""
        folder = self.root / UPLOAD_PREFIX
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".put-{upload_id}-")
        received = 0
        with os.fdopen(fd, "wb") as handle:
            while received <= limit:
                chunk = stream.read(min(_COPY_CHUNK, limit + 1 - received))
                if not chunk:
                    break
                handle.write(chunk)
                received += len(chunk)
        return Path(tmp), received

    def keep(self, upload_id: str, received: Path) -> None:
        """Move a checked upload into place (atomically: a reader never sees half a file)."""
        os.chmod(received, 0o644)
        os.replace(received, self.root / UPLOAD_PREFIX / upload_id)


class GcsUploadStore(UploadStore):
    """gs://OUTPUT_BUCKET, for GENERATION_BACKEND=vertex: clients PUT to a V4 signed URL."""

    def __init__(self, bucket: str, project: str) -> None:
        self.bucket = bucket
        self._project = project
        self._client: Any = None
        self._lock = threading.Lock()

    def upload_uri(self, upload_id: str) -> str:
        return f"gs://{self.bucket}/{UPLOAD_PREFIX}{upload_id}"

    def owns(self, uri: str) -> str | None:
        prefix = f"gs://{self.bucket}/"
        if not uri.startswith(prefix):
            return None
        name = uri[len(prefix):]
        return name if name and ".." not in name.split("/") else None

    def client(self) -> Any:
        """The Storage client, built on first use (STORAGE_EMULATOR_HOST is honoured by it)."""
        with self._lock:
            if self._client is None:
                from google.cloud import storage  # type: ignore[attr-defined]

                self._client = storage.Client(project=self._project)
            return self._client

    def _blob(self, uri: str) -> Any:
        name = self.owns(uri)
        if name is None:
            raise ValueError("not an object of this store")
        return self.client().bucket(self.bucket).blob(name)

    def stat(self, uri: str) -> ObjectStat | None:
        from google.api_core.exceptions import NotFound

        blob = self._blob(uri)
        try:
            blob.reload(timeout=10)
        except NotFound:
            return None
        except Exception as exc:  # transport, auth or 5xx: one retryable outcome to the caller
            raise InputStorageError(detail=f"metadata of an input failed: {type(exc).__name__}") from exc
        return ObjectStat(int(blob.size or 0), blob.content_type)

    def reader(self, uri: str) -> Reader:
        blob = self._blob(uri)

        def read(offset: int, length: int) -> bytes:
            try:
                data: bytes = blob.download_as_bytes(start=offset, end=offset + length - 1, raw_download=True,
                                                     checksum=None, timeout=10)
            except Exception as exc:  # as in stat: never a 500 for Cloud Storage being unwell
                raise InputStorageError(detail=f"reading an input failed: {type(exc).__name__}") from exc
            return data

        return read


_lock = threading.Lock()
_cached: tuple[tuple[str, str, str], UploadStore] | None = None


def store_for(settings: Settings) -> UploadStore:
    """The store of this deployment: local files with the local backend, else OUTPUT_BUCKET."""
    global _cached
    if settings.generation_backend == "local" or not settings.output_bucket:
        key = ("local", settings.local_data_dir, "")
    else:
        key = ("gcs", settings.output_bucket, settings.google_cloud_project)
    with _lock:
        if _cached is None or _cached[0] != key:
            store = LocalUploadStore(key[1]) if key[0] == "local" else GcsUploadStore(key[1], key[2])
            _cached = (key, store)
        return _cached[1]
