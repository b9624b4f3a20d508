"""Input pictures on the command line: a local file is uploaded, anything else is a reference.

`--image cat.png` uploads the file (POST /v1/uploads, then a PUT of its bytes to the signed URL, which
needs no API key), then refers to it by `upload_id`. `gen_x` or `gen_x:N` refers to output N of one of
your jobs (chaining), `upl_x` to an earlier upload, and a `gs://` URI to one of your outputs or uploads.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from genmedia_cli.context import say, segment
from genmedia_cli.errors import ApiError, TransportError, UsageError
from genmedia_cli.http import Client

_JOB = re.compile(r"^((?:gen|bat)_[A-Za-z0-9_]+)(?::(\d+))?$")
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


def _mime_type(head: bytes, name: str) -> str:
    for magic, mime in _MAGIC:
        if head.startswith(magic):
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    raise UsageError(f"{name}: not a PNG, JPEG or WebP picture")


def upload_file(client: Client, path: str) -> str:
    """Upload one local picture; its `upload_id` once the server has checked it."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise UsageError(f"{path}: cannot read it ({err.strerror or err})") from None
    if not data:
        raise UsageError(f"{path}: the file is empty")
    upload = client.call("POST", "/v1/uploads", {"mime_type": _mime_type(data[:12], path), "size_bytes": len(data)})
    request = urllib.request.Request(upload["upload_url"], data=data, method="PUT",
                                     headers=upload.get("upload_headers") or {})
    try:
        with urllib.request.urlopen(request, timeout=client.timeout) as response:
            response.read()
    except urllib.error.HTTPError as err:
        raise ApiError.from_response(err.code, err.read(), err.headers) from None
    except (urllib.error.URLError, OSError) as err:
        raise TransportError(f"cannot upload {path}: {getattr(err, 'reason', err)}") from None
    checked = client.call("GET", f"/v1/uploads/{segment(upload['upload_id'])}")
    if checked["status"] != "ready":
        error = checked.get("error") or {}
        raise UsageError(f"{path}: refused by the server: {error.get('message', checked['status'])}")
    say(f"uploaded {path} as {checked['upload_id']} ({checked.get('width')}x{checked.get('height')})")
    return str(checked["upload_id"])


def reference(client: Client, value: str) -> dict[str, Any]:
    """A media reference for a flag's value: a job output, an upload, a gs:// URI, or a file to upload."""
    job = _JOB.match(value)
    if job:
        return {"job_id": job.group(1), "output": int(job.group(2) or 0)}
    if re.match(r"^upl_[A-Za-z0-9]+$", value):
        return {"upload_id": value}
    if value.startswith("gs://"):
        return {"uri": value}
    return {"upload_id": upload_file(client, value)}


def input_fields(client: Client, options: dict[str, Any]) -> dict[str, Any]:
    """The request's picture fields from --image/--from, --last-frame, --reference and --input."""
    fields: dict[str, Any] = {}
    image = options.get("image") or options.get("from_job")
    if options.get("image") and options.get("from_job"):
        raise UsageError("give --image or --from, not both")
    if options.get("from_job") and not _JOB.match(options["from_job"]):
        raise UsageError("--from takes a job id, optionally with an output number: gen_x or gen_x:1")
    if image:
        fields["image"] = reference(client, image)
    if options.get("last_frame"):
        fields["last_frame"] = reference(client, options["last_frame"])
    if options.get("reference"):
        fields["reference_images"] = [{"image": reference(client, v), "type": "asset"} for v in options["reference"]]
    if options.get("input"):
        fields["input_images"] = [reference(client, v) for v in options["input"]]
    return fields
