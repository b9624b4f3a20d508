"""The uploads routes' work: create an upload and its URL, receive a local PUT, show an upload."""

from __future__ import annotations

import urllib.parse
from typing import IO

from shared.config import get_settings
from shared.database import session_scope
from shared.exceptions import ConflictError, ForbiddenError
from shared.results.signing import InvalidSignatureError, signer_for
from shared.uploads import uploads
from shared.uploads.images import ImageInfo
from shared.uploads.signing import put_headers, signed_put_url
from shared.uploads.store import UPLOAD_PREFIX, GcsUploadStore, LocalUploadStore, store_for
from shared.uploads.uploads import Upload, UploadCreate

LOCAL_ROUTE = "/v1/uploads/"
PURPOSE = "upload"  # the HMAC key of upload URLs, derived apart from download links' (shared.results)


def create_upload(body: UploadCreate, *, owner_id: str, base_url: str) -> Upload:
    """Record a pending upload and mint the URL its bytes are PUT to (cloud: Cloud Storage itself)."""
    settings = get_settings()
    store = store_for(settings)
    with session_scope() as session:
        row = uploads.insert_upload(session, body, owner_id=owner_id, store=store,
                                    ttl_seconds=settings.upload_url_ttl_seconds)
        upload = Upload.from_row(row)
    expires = int(upload.expires_at.timestamp())
    if isinstance(store, GcsUploadStore):
        url = signed_put_url(store, UPLOAD_PREFIX + upload.upload_id, body.mime_type, body.size_bytes,
                             ttl_seconds=settings.upload_url_ttl_seconds)
    else:
        url = local_put_url(base_url, upload.upload_id, expires)
    return upload.model_copy(update={"upload_url": url,
                                     "upload_headers": put_headers(body.mime_type, body.size_bytes)})


def local_put_url(base_url: str, upload_id: str, expires: int) -> str:
    """`{base}/v1/uploads/{id}?expires=..&signature=..`: the generation function's own signed PUT route."""
    query = urllib.parse.urlencode({"expires": expires, "signature": _signature(upload_id, expires)})
    return f"{base_url.rstrip('/')}{LOCAL_ROUTE}{upload_id}?{query}"


def receive_upload(upload_id: str, *, expires: str | None, signature: str | None, content_type: str | None,
                   content_length: int | None, stream: IO[bytes]) -> Upload:
    """A PUT to a local upload URL: signature, declared type and size, then the picture itself."""
    settings = get_settings()
    store = store_for(settings)
    _verify(upload_id, expires, signature)
    if not isinstance(store, LocalUploadStore):
        raise ForbiddenError("uploads go to Cloud Storage on this deployment; use the upload_url you were given")
    with session_scope() as session:
        row = uploads.get_upload(session, upload_id)
        uploads.require_put_allowed(row, content_type, content_length)
        session.expunge(row)
    received, size = store.receive(upload_id, stream, row.size_bytes)
    try:
        outcome = uploads.inspect_stored(store.reader(received.as_uri()), row, size)
        if isinstance(outcome, ImageInfo):
            store.keep(upload_id, received)
        with session_scope() as session:
            updated = uploads.record_check(session, upload_id, outcome)
            if updated is None:  # a concurrent PUT of the same upload finished first
                raise ConflictError(f"upload {upload_id} already holds its picture")
            upload = Upload.from_row(updated)
    finally:
        received.unlink(missing_ok=True)
    if upload.error is not None:
        raise uploads.UploadRejectedError.for_field("body", upload.error.message)
    return upload


def read_upload(upload_id: str, *, owner_id: str) -> Upload:
    """The upload; a pending one in Cloud Storage is checked now (its bytes may have arrived)."""
    store = store_for(get_settings())
    with session_scope() as session:
        row = uploads.get_upload(session, upload_id, owner_id=owner_id)
        session.expunge(row)
    if row.status == "pending" and isinstance(store, GcsUploadStore):
        outcome = uploads.check_bytes(store, row)
        if outcome is not None:
            with session_scope() as session:
                row = uploads.record_check(session, upload_id, outcome) or uploads.get_upload(session, upload_id)
                return Upload.from_row(row)
    return Upload.from_row(row)


def _signature(upload_id: str, expires: int) -> str:
    signer = signer_for(PURPOSE)
    if signer is None:  # the generation function always has API_KEY_PEPPER; start-up checks it
        raise ForbiddenError("uploads are not available on this deployment")
    return signer.sign(upload_id, expires)


def _verify(upload_id: str, expires: str | None, signature: str | None) -> None:
    """403 unless the URL is one we made for this upload and it has not expired."""
    signer = signer_for(PURPOSE)
    if signer is None or not expires or not signature:
        raise InvalidSignatureError()
    try:
        expires_at = int(expires)
    except ValueError:
        raise InvalidSignatureError() from None
    signer.verify(upload_id, expires_at, signature)
