"""The life of an upload: created with a signed PUT URL, its bytes checked once, then referenced.

`pending` until its bytes are checked, then `ready` (a PNG, JPEG or WebP of sane dimensions, of the
declared type and size) or `rejected` (the error says why; the same URL may be PUT again). Locally
the generation function receives the PUT and checks while storing; in the cloud the client PUTs to
Cloud Storage and the bytes are checked on first use (`GET /v1/uploads/{id}` or a reference).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer
from sqlalchemy import func, update
from sqlalchemy.orm import Session

from shared.exceptions import ConflictError, NotFoundError, ValidationError
from shared.jobs import new_id, now, rfc3339
from shared.media.request import IMAGE_MIME_TYPES
from shared.tables import UploadRow
from shared.uploads.images import ImageInfo, NotAnImageError, Reader, inspect_image
from shared.uploads.store import UploadStore

UploadStatus = Literal["pending", "ready", "rejected"]
MAX_UPLOAD_BYTES = 30 * 1024 * 1024  # the largest any model reads (Gemini, from Cloud Storage)


class UploadCreate(BaseModel):
    """`POST /v1/uploads`: what the caller will PUT."""

    model_config = ConfigDict(extra="forbid")

    mime_type: Literal["image/png", "image/jpeg", "image/webp"]
    size_bytes: int = Field(ge=1, le=MAX_UPLOAD_BYTES, strict=True)


class UploadError(BaseModel):
    """Why an upload was rejected."""

    reason: str
    message: str


class Upload(BaseModel):
    """An upload as the API shows it; `upload_url` and `upload_headers` only when it is created."""

    upload_id: str
    status: UploadStatus
    mime_type: str
    size_bytes: int
    width: int | None = None
    height: int | None = None
    error: UploadError | None = None
    upload_url: str | None = None
    upload_method: Literal["PUT"] = "PUT"
    upload_headers: dict[str, str] | None = None
    expires_at: datetime
    created_at: datetime

    @field_serializer("expires_at", "created_at")
    def _rfc3339(self, value: datetime) -> str:
        return rfc3339(value)

    @classmethod
    def from_row(cls, row: UploadRow) -> Upload:
        return cls(
            upload_id=row.id, status=row.status, mime_type=row.mime_type or row.declared_mime_type,  # type: ignore[arg-type]
            size_bytes=row.size_bytes, width=row.width, height=row.height,
            error=UploadError(**row.error) if row.error else None,
            expires_at=row.expires_at, created_at=row.created_at,
        )


class UploadRejectedError(ValidationError):
    """The uploaded bytes are not a picture we accept, or not what was declared."""

    reason = "UPLOAD_REJECTED"


class UploadNotReadyError(ValidationError):
    """The upload's bytes have not been PUT yet (or its URL expired first)."""

    reason = "UPLOAD_NOT_READY"


def insert_upload(session: Session, body: UploadCreate, *, owner_id: str, store: UploadStore,
                  ttl_seconds: float) -> UploadRow:
    """Record a pending upload whose URL expires in `ttl_seconds`."""
    upload_id = new_id("upl")
    row = UploadRow(id=upload_id, owner_id=owner_id, declared_mime_type=body.mime_type,
                    size_bytes=body.size_bytes, uri=store.upload_uri(upload_id), status="pending",
                    expires_at=now() + timedelta(seconds=ttl_seconds))
    session.add(row)
    session.flush()
    return row


def get_upload(session: Session, upload_id: str, *, owner_id: str | None = None) -> UploadRow:
    """The upload, or NotFoundError (also for another owner's: no existence leak)."""
    row = session.get(UploadRow, upload_id)
    if row is None or (owner_id is not None and row.owner_id != owner_id):
        raise NotFoundError(f"upload {upload_id[:64]} not found")
    return row


def check_bytes(store: UploadStore, row: UploadRow) -> ImageInfo | UploadError | None:
    """Look at the stored object: its picture, why it is refused, or None when nothing was PUT yet."""
    found = store.stat(row.uri)
    if found is None:
        return None
    declared = row.declared_mime_type
    if found.content_type and found.content_type != declared:
        return UploadError(reason="TYPE_MISMATCH",
                           message=f"was stored as {found.content_type[:60]}, not the declared {declared}")
    return inspect_stored(store.reader(row.uri), row, found.size)


def inspect_stored(read: Reader, row: UploadRow, size: int) -> ImageInfo | UploadError:
    """The picture in the upload's bytes, or why they are refused (size, type, dimensions)."""
    if size != row.size_bytes:
        return UploadError(reason="SIZE_MISMATCH",
                           message=f"is {size} bytes, not the declared {row.size_bytes}")
    try:
        info = inspect_image(read, size)
    except NotAnImageError as err:
        return UploadError(reason="NOT_AN_IMAGE", message=str(err))
    if info.mime_type != row.declared_mime_type:
        return UploadError(reason="TYPE_MISMATCH",
                           message=f"is a {info.mime_type} file, not the declared {row.declared_mime_type}")
    return info


def record_check(session: Session, upload_id: str, outcome: ImageInfo | UploadError) -> UploadRow | None:
    """Store the outcome of a check; a ready upload never changes again (None then)."""
    if isinstance(outcome, ImageInfo):
        values = {"status": "ready", "mime_type": outcome.mime_type, "width": outcome.width,
                  "height": outcome.height, "error": None}
    else:
        values = {"status": "rejected", "error": outcome.model_dump()}
    return session.execute(
        update(UploadRow).where(UploadRow.id == upload_id, UploadRow.status != "ready")
        .values(updated_at=func.now(), **values).returning(UploadRow)
    ).scalar_one_or_none()


def require_put_allowed(row: UploadRow, content_type: str | None, content_length: int | None) -> None:
    """Refuse a PUT before reading it: a finished upload, another type, another size."""
    if row.status == "ready":
        raise ConflictError(f"upload {row.id} already holds its picture; create another upload")
    if row.expires_at <= now():
        raise UploadNotReadyError.for_field("upload_url", "has expired; create another upload")
    declared = row.declared_mime_type
    if content_type is not None and content_type.split(";")[0].strip().lower() != declared:
        raise UploadRejectedError.for_field("Content-Type", f"must be {declared}, as declared")
    if content_length is not None and content_length != row.size_bytes:
        raise UploadRejectedError.for_field("body", f"must be exactly {row.size_bytes} bytes, as declared")


def usable(row: UploadRow, field: str) -> None:
    """Raise the 400 that says why `row` cannot be read yet (None when it is ready)."""
    if row.status == "ready":
        return
    if row.status == "rejected" and row.error:
        raise UploadRejectedError.for_field(field, f"upload {row.id} {row.error.get('message', 'was rejected')}")
    if row.expires_at <= now():
        raise UploadNotReadyError.for_field(field, f"upload {row.id} expired before its bytes were PUT")
    raise UploadNotReadyError.for_field(field, f"upload {row.id} has no bytes yet: PUT the file to its upload_url")


__all__ = [
    "IMAGE_MIME_TYPES", "MAX_UPLOAD_BYTES", "Upload", "UploadCreate", "UploadNotReadyError",
    "UploadRejectedError", "check_bytes", "get_upload", "insert_upload", "inspect_stored", "record_check",
    "require_put_allowed", "usable",
]
