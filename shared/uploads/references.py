"""Media references resolved: each input picture is the caller's own, readable, and fit for the model.

A reference is `{"uri"}` (one of the caller's outputs or uploads, in our own bucket), `{"upload_id"}`
or `{"job_id", "output"}`. Resolving replaces it with `{"uri", "mime_type"}` (the type read from the
bytes), which is what jobs store and backends send (Vertex reads the object from Cloud Storage).
Another owner's job or upload answers 404 like one that does not exist (no existence leak); anything
else wrong is a 400 naming the field, all before a job is created or a model called.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.config import get_settings
from shared.database import session_scope
from shared.exceptions import FieldViolation, NotFoundError, ValidationError
from shared.media.capabilities import ModelCapabilities, capabilities_for
from shared.media.request import GenerationRequest, MediaRef, ReferenceImage
from shared.tables import JobRow, UploadRow
from shared.uploads import uploads
from shared.uploads.store import UPLOAD_PREFIX, UploadStore, store_for

__all__ = ["InputNotFoundError", "resolve_inputs"]

_OUTPUT_FOLDERS = ("images", "videos")


class InputNotFoundError(NotFoundError):
    """A referenced job, output or upload does not exist, or is not the caller's."""

    reason = "INPUT_NOT_FOUND"


@dataclass
class _Input:
    """One reference of one request, on its way to being resolved."""

    field: str
    ref: MediaRef
    caps: ModelCapabilities
    upload_id: str | None = None
    job_id: str | None = None
    output: int | None = None
    uri: str | None = None  # the exact output URI given, when the caller named it by URI
    resolved: MediaRef | None = None


def resolve_inputs(requests: Sequence[tuple[str, GenerationRequest]], *, owner_id: str) -> list[GenerationRequest]:
    """The requests (already resolved against their models) with every input reference resolved.

    Each request comes with the prefix naming it in errors (`""`, or `items[3]` in a batch).
    """
    store = store_for(get_settings())
    pending: list[_Input] = []
    violations: list[FieldViolation] = []
    for prefix, request in requests:
        caps = capabilities_for(str(request.model))
        for field, ref in request.inputs():
            name = f"{prefix}.{field}" if prefix else field
            found = _classify(store, _Input(name, ref, caps))
            if isinstance(found, FieldViolation):
                violations.append(found)
            else:
                pending.append(found)
    if violations:
        raise ValidationError.from_violations(violations)
    if not pending:
        return [request for _, request in requests]
    _load(store, pending, owner_id)
    return [_rebuilt(request, {i.field: i.resolved for i in pending}, prefix) for prefix, request in requests]


def _classify(store: UploadStore, item: _Input) -> _Input | FieldViolation:
    """What the reference names: an upload or a job output (a URI is mapped to one of them)."""
    ref = item.ref
    if ref.upload_id is not None:
        item.upload_id = ref.upload_id
        return item
    if ref.job_id is not None:
        item.job_id, item.output = ref.job_id, ref.output or 0
        return item
    path = store.owns(str(ref.uri))
    parts = path.split("/") if path else []
    if len(parts) == 2 and parts[0] + "/" == UPLOAD_PREFIX and parts[1].startswith("upl_"):
        item.upload_id = parts[1]
        return item
    if len(parts) >= 3 and parts[0] in _OUTPUT_FOLDERS and parts[1].startswith(("gen_", "bat_")):
        item.job_id, item.uri = parts[1], ref.uri
        return item
    # No location in the message: locally it would be a file path, which error bodies never hold.
    return FieldViolation(f"{item.field}.uri", "must be the URI of one of your outputs or uploads")


def _load(store: UploadStore, items: list[_Input], owner_id: str) -> None:
    """Find every referenced row (one transaction), check pending uploads (no transaction), resolve."""
    with session_scope() as session:
        rows: dict[str, UploadRow | JobRow] = {}
        for item in items:
            key = item.upload_id or str(item.job_id)
            if key in rows:
                continue
            row: UploadRow | JobRow | None = (
                session.get(UploadRow, key) if item.upload_id else session.get(JobRow, key))
            if row is None or row.owner_id != owner_id:
                what = "upload" if item.upload_id else "generation"
                raise InputNotFoundError(f"{item.field}: {what} {key[:64]} not found",
                                         metadata={"field": item.field})
            rows[key] = row
            session.expunge(row)
    _check_pending(store, [r for r in rows.values() if isinstance(r, UploadRow) and r.status == "pending"])
    errors: list[ValidationError] = []
    for item in items:
        row = rows[item.upload_id or str(item.job_id)]
        try:
            item.resolved = _from_upload(item, row) if isinstance(row, UploadRow) else _from_job(item, row)
        except ValidationError as err:
            errors.append(err)
    if errors:
        combined = ValidationError.from_violations([v for err in errors for v in err.violations])
        combined.reason = errors[0].reason  # UPLOAD_NOT_READY, UPLOAD_REJECTED: what to do about the first
        raise combined


def _check_pending(store: UploadStore, rows: list[UploadRow]) -> None:
    """Look at the bytes of uploads never checked (cloud: the client PUT them to Cloud Storage)."""
    for row in rows:
        outcome = uploads.check_bytes(store, row)
        if outcome is None:
            continue  # still nothing there: `usable` says so
        with session_scope() as session:
            updated = uploads.record_check(session, row.id, outcome)
            fresh = updated or uploads.get_upload(session, row.id)
            for name in ("status", "mime_type", "width", "height", "error"):
                setattr(row, name, getattr(fresh, name))


def _fits(item: _Input, mime_type: str, size: int | None) -> None:
    limits, model = item.caps.inputs, item.caps.model
    if mime_type not in limits.mime_types:
        kinds = " or ".join(m.removeprefix("image/").upper() for m in limits.mime_types)
        raise ValidationError.for_field(item.field, f"is {mime_type}; {model} takes {kinds} pictures")
    if size is not None and size > limits.max_bytes:
        raise ValidationError.for_field(
            item.field, f"is {size} bytes; {model} takes pictures up to {limits.max_bytes // 2**20} MB")


def _from_upload(item: _Input, row: UploadRow) -> MediaRef:
    uploads.usable(row, item.field)
    mime_type = str(row.mime_type)
    _fits(item, mime_type, row.size_bytes)
    return MediaRef(uri=row.uri, mime_type=mime_type)  # type: ignore[arg-type]


def _from_job(item: _Input, row: JobRow) -> MediaRef:
    if row.status != "succeeded":
        raise ValidationError.for_field(item.field, f"generation {row.id} is {row.status}, it has no outputs yet")
    outputs = row.outputs
    if item.uri is not None:
        index = next((i for i, o in enumerate(outputs) if o.get("uri") == item.uri), None)
        if index is None:
            raise InputNotFoundError(f"{item.field}: no such output of generation {row.id}",
                                     metadata={"field": item.field})
    else:
        index = int(item.output or 0)
        if index >= len(outputs):
            raise ValidationError.for_field(
                f"{item.field}.output", f"generation {row.id} has {len(outputs)} output(s), numbered from 0")
    output = outputs[index]
    if not output["mime_type"].startswith("image/"):
        raise ValidationError.for_field(item.field, f"output {index} of {row.id} is a {output['mime_type']}, "
                                        "not a picture")
    _fits(item, output["mime_type"], None)  # our own outputs: Vertex made them, their size is its own
    return MediaRef(uri=output["uri"], mime_type=output["mime_type"])  # type: ignore[arg-type]


def _rebuilt(request: GenerationRequest, resolved: dict[str, MediaRef | None], prefix: str) -> GenerationRequest:
    def one(field: str) -> MediaRef:
        found = resolved[f"{prefix}.{field}" if prefix else field]
        assert found is not None
        return found

    update: dict[str, object] = {}
    if request.image is not None:
        update["image"] = one("image")
    if request.last_frame is not None:
        update["last_frame"] = one("last_frame")
    if request.reference_images:
        update["reference_images"] = [ReferenceImage(image=one(f"reference_images[{i}].image"), type=r.type)
                                      for i, r in enumerate(request.reference_images)]
    if request.input_images:
        update["input_images"] = [one(f"input_images[{i}]") for i in range(len(request.input_images))]
    return request.model_copy(update=update) if update else request
