"""The results file of a batch: `results/{batch_id}.jsonl` beside the outputs, written exactly once.

When no item is queued or running, one line per item in submission order:
`{"custom_id", "id", "status", "outputs", "error"}`. Many may try at once (1,000 items finishing
together, ticks, a cancel): one takes a lease on the batch row (a guarded UPDATE that also checks no
item is active), writes, and marks the batch written; the others see the lease or the mark and leave.
The write is atomic and create-only (a temporary file linked into place locally; a Cloud Storage
upload with `if_generation_match=0`), so a reader never sees half a file, and a writer that finds the
file already there (a previous writer died before marking it) takes it as written: its bytes are
determined by final items, which never change. A write that fails releases the lease; the tick's
sweep retries it. The file is never marked written before it is whole.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from shared.config import get_settings
from shared.database import session_scope
from shared.exceptions import GenmediaError
from shared.tables import BatchRow, JobRow

__all__ = ["ResultsWriteError", "render_results", "write_pending_results", "write_results_if_finished"]

LEASE_SECONDS = 120.0
_log = logging.getLogger("genmedia.results")


class ResultsWriteError(GenmediaError):
    """The results file could not be stored now; it is retried by the next tick."""

    reason = "RESULTS_WRITE_FAILED"
    retryable = True
    default_message = "the results file could not be written; it will be retried"


def _no_active_items(batch_id: Any) -> Any:
    return ~exists().where(JobRow.batch_id == batch_id, JobRow.status.in_(("queued", "running")))


def _claim(session: Session, batch_id: str) -> bool:
    lease = func.now() + func.make_interval(0, 0, 0, 0, 0, 0, LEASE_SECONDS)
    claimed = session.execute(
        update(BatchRow)
        .where(BatchRow.id == batch_id, BatchRow.results_written_at.is_(None),
               BatchRow.results_lease_until.is_(None) | (BatchRow.results_lease_until < func.now()),
               _no_active_items(BatchRow.id))
        .values(results_lease_until=lease).returning(BatchRow.id)
    ).scalar_one_or_none()
    return claimed is not None


def render_results(session: Session, batch_id: str) -> bytes:
    """The file's bytes: one JSON line per item in submission order."""
    rows = session.execute(
        select(JobRow.custom_id, JobRow.id, JobRow.status, JobRow.outputs, JobRow.error)
        .where(JobRow.batch_id == batch_id).order_by(JobRow.item_index)
    ).all()
    lines = [json.dumps({"custom_id": c, "id": i, "status": s, "outputs": o, "error": e},
                        separators=(",", ":"), ensure_ascii=False) for c, i, s, o, e in rows]
    return ("\n".join(lines) + "\n").encode()


def _store_local(key: str, data: bytes) -> str:
    path = Path(get_settings().local_data_dir).resolve() / key
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, path)  # create-only and atomic: never over an existing file, never half of one
        except FileExistsError:
            pass  # an earlier writer finished the file but died before marking it written
    finally:
        os.unlink(tmp)
    return path.as_uri()


def _store_gcs(key: str, data: bytes) -> str:
    from google.api_core.exceptions import PreconditionFailed

    from shared.results.gcs_links import output_bucket

    bucket = output_bucket()
    try:
        bucket.blob(key).upload_from_string(data, content_type="application/jsonl", if_generation_match=0)
    except PreconditionFailed:
        pass  # already there, whole: uploads are atomic
    return f"gs://{bucket.name}/{key}"


def store_results(batch_id: str, data: bytes) -> str:
    """Store the bytes at results/{batch_id}.jsonl beside the outputs; its URI."""
    key = f"results/{batch_id}.jsonl"
    if get_settings().generation_backend == "local":
        return _store_local(key, data)
    return _store_gcs(key, data)


def write_results_if_finished(batch_id: str) -> bool:
    """Write the batch's results file if it has finished and nobody has; True when this call wrote it."""
    with session_scope() as session:
        if not _claim(session, batch_id):
            return False
        data = render_results(session, batch_id)
    try:
        uri = store_results(batch_id, data)
    except Exception as exc:
        with session_scope() as session:
            session.execute(update(BatchRow).where(BatchRow.id == batch_id).values(results_lease_until=None))
        raise ResultsWriteError(detail=f"results of {batch_id}: {type(exc).__name__}") from exc
    with session_scope() as session:
        session.execute(update(BatchRow).where(BatchRow.id == batch_id, BatchRow.results_written_at.is_(None))
                        .values(results_uri=uri, results_written_at=func.now(), results_lease_until=None))
    _log.info("results file written", extra={"batch_id": batch_id, "items": data.count(b"\n")})
    return True


def try_write_results(batch_id: str | None) -> None:
    """`write_results_if_finished`, with a failure logged rather than raised (the tick retries it)."""
    if batch_id is None:
        return
    try:
        write_results_if_finished(batch_id)
    except GenmediaError as err:
        _log.warning("results file not written now, will be: %s", err, extra={"batch_id": batch_id})


def write_pending_results(limit: int = 50) -> int:
    """The tick's sweep: write the files of finished batches that have none (a writer failed or died)."""
    with session_scope() as session:
        due = session.execute(
            select(BatchRow.id)
            .where(BatchRow.results_written_at.is_(None),
                   BatchRow.results_lease_until.is_(None) | (BatchRow.results_lease_until < func.now()),
                   _no_active_items(BatchRow.id))
            .order_by(BatchRow.created_at).limit(limit)
        ).scalars().all()
    written = 0
    for batch_id in due:
        try:
            written += write_results_if_finished(batch_id)
        except GenmediaError as err:
            _log.warning("results file not written now, will be: %s", err, extra={"batch_id": batch_id})
    return written


