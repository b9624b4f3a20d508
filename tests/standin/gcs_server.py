"""A minimal Cloud Storage JSON API stand-in: the uploads google-cloud-storage makes, and reads.

Handles POST /upload/storage/v1/b/{bucket}/o?uploadType=multipart (what `upload_from_string` sends
for objects up to 8 MiB), the resumable protocol (POST ?uploadType=resumable, then PUT chunks with
Content-Range), GET /storage/v1/b/{bucket}/o/{object} (metadata, or bytes with alt=media) and
GET /download/storage/v1/b/{bucket}/o/{object}?alt=media. Point STORAGE_EMULATOR_HOST at `url`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import quote, unquote

import google_crc32c

from tests.standin.http_base import BackgroundServer, Incoming, Reply

_UPLOAD = re.compile(r"^/upload/storage/v1/b/(?P<bucket>[^/]+)/o$")
_OBJECT = re.compile(r"^/(?:download/)?storage/v1/b/(?P<bucket>[^/]+)/o/(?P<name>.+)$")
_SIGNED = re.compile(r"^/(?P<bucket>[a-z0-9][a-z0-9._-]+)/(?P<name>.+)$")
_V4_PARAMS = ("X-Goog-Algorithm", "X-Goog-Credential", "X-Goog-Date", "X-Goog-Expires", "X-Goog-Signature")
_RANGE = re.compile(r"bytes (?:(?P<first>\d+)-(?P<last>\d+)|\*)/(?P<total>\d+|\*)")


@dataclass
class StoredObject:
    """One object: its bytes and the metadata the client sent."""

    bucket: str
    name: str
    data: bytes
    content_type: str
    generation: int

    def resource(self) -> dict[str, Any]:
        """The object as the JSON API describes it."""
        # Both checksums, as the real API: the client validates crc32c after a resumable upload.
        md5 = base64.b64encode(hashlib.md5(self.data).digest()).decode()
        crc32c = base64.b64encode(struct.pack(">I", google_crc32c.value(self.data))).decode()
        return {
            "kind": "storage#object", "id": f"{self.bucket}/{self.name}/{self.generation}",
            "bucket": self.bucket, "name": self.name, "size": str(len(self.data)),
            "contentType": self.content_type, "generation": str(self.generation), "metageneration": "1",
            "md5Hash": md5, "crc32c": crc32c,
            "selfLink": f"/storage/v1/b/{self.bucket}/o/{quote(self.name, safe='')}",
        }


class GcsStandIn:
    """In-memory buckets behind the JSON API's upload and read endpoints."""

    def __init__(self) -> None:
        self.url = ""  # set by start()
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self.requests: list[Incoming] = []
        self._sessions: dict[str, dict[str, Any]] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.objects.clear()
            self.requests.clear()
            self._sessions.clear()

    def get(self, uri: str) -> StoredObject:
        """The object at gs://bucket/name (KeyError when absent)."""
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        return self.objects[(bucket, name)]

    def handle(self, request: Incoming) -> Reply:
        with self._lock:
            self.requests.append(request)
        upload = _UPLOAD.match(request.path)
        if upload and request.method == "POST":
            kind = (request.query.get("uploadType") or [""])[0]
            if kind == "multipart":
                return self._multipart(upload["bucket"], request)
            if kind == "resumable":
                return self._start_session(upload["bucket"], request)
        if upload and request.method == "PUT":
            return self._resume(request)
        found = _OBJECT.match(request.path)
        if found and request.method == "GET":
            obj = self.objects.get((found["bucket"], unquote(found["name"])))
            if obj is None:
                return _error(404, "No such object.")
            if (request.query.get("alt") or [""])[0] == "media":
                return _media(obj, request.headers.get("range"))
            return Reply.json(200, obj.resource())
        signed = _SIGNED.match(request.path)
        if signed and request.method == "GET" and "X-Goog-Signature" in request.query:
            return self._signed_get(signed["bucket"], unquote(signed["name"]), request)
        return _error(404, f"unsupported: {request.method} {request.path}")

    def _signed_get(self, bucket: str, name: str, request: Incoming) -> Reply:
        """A V4-signed XML API GET: every signing parameter present and not expired, else 403."""
        params = {k: v[0] for k, v in request.query.items()}
        if any(not params.get(p) for p in _V4_PARAMS) or params["X-Goog-Algorithm"] != "GOOG4-RSA-SHA256":
            return _error(403, "SignatureDoesNotMatch")
        signed_at = datetime.strptime(params["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        if datetime.now(UTC) > signed_at + timedelta(seconds=int(params["X-Goog-Expires"])):
            return _error(403, "ExpiredToken")
        obj = self.objects.get((bucket, name))
        if obj is None:
            return _error(404, "NoSuchKey")
        return Reply(200, obj.data, content_type=obj.content_type)

    def _store(self, bucket: str, name: str, data: bytes, content_type: str) -> Reply:
        with self._lock:
            self._generation += 1
            obj = StoredObject(bucket, name, data, content_type, self._generation)
            self.objects[(bucket, name)] = obj
        return Reply.json(200, obj.resource())

    def _multipart(self, bucket: str, request: Incoming) -> Reply:
        header = f"Content-Type: {request.headers.get('content-type', '')}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(header + request.body)
        parts = list(message.iter_parts()) if message.is_multipart() else []
        if len(parts) != 2:
            return _error(400, "multipart upload needs a metadata part and a media part")
        raw_metadata, data = parts[0].get_payload(decode=True), parts[1].get_payload(decode=True)
        if not isinstance(raw_metadata, bytes) or not isinstance(data, bytes):
            return _error(400, "multipart parts must be bytes")
        metadata = json.loads(raw_metadata or b"{}")
        name = metadata.get("name") or (request.query.get("name") or [""])[0]
        content_type = metadata.get("contentType") or parts[1].get_content_type()
        return self._store(bucket, name, data, content_type)

    def _start_session(self, bucket: str, request: Incoming) -> Reply:
        metadata = request.json() or {}
        name = metadata.get("name") or (request.query.get("name") or [""])[0]
        content_type = metadata.get("contentType") or request.headers.get("x-upload-content-type", "")
        session = uuid.uuid4().hex
        with self._lock:
            self._sessions[session] = {"bucket": bucket, "name": name, "type": content_type, "data": b""}
        location = f"http://{request.headers.get('host')}/upload/storage/v1/b/{bucket}/o" \
                   f"?uploadType=resumable&upload_id={session}"
        return Reply(200, b"", {"Location": location})

    def _resume(self, request: Incoming) -> Reply:
        session = self._sessions.get((request.query.get("upload_id") or [""])[0])
        if session is None:
            return _error(404, "No such upload session.")
        session["data"] += request.body
        match = _RANGE.match(request.headers.get("content-range", ""))
        total = match["total"] if match else str(len(session["data"]))
        if total != "*" and len(session["data"]) >= int(total):
            return self._store(session["bucket"], session["name"], session["data"], session["type"])
        return Reply(308, b"", {"Range": f"bytes=0-{len(session['data']) - 1}"})


def _media(obj: StoredObject, byte_range: str | None) -> Reply:
    """The object's bytes, or the part a `Range: bytes=a-b` header asks for (206), as the API does."""
    match = re.match(r"^bytes=(\d+)-(\d*)$", byte_range or "")
    if match is None:
        return Reply(200, obj.data, content_type=obj.content_type)
    first = int(match[1])
    last = min(int(match[2]) if match[2] else len(obj.data) - 1, len(obj.data) - 1)
    if first >= len(obj.data):
        return _error(416, "Requested range not satisfiable.")
    headers = {"Content-Range": f"bytes {first}-{last}/{len(obj.data)}"}
    return Reply(206, obj.data[first : last + 1], headers, content_type=obj.content_type)


def _error(code: int, message: str) -> Reply:
    return Reply.json(code, {"error": {"code": code, "message": message, "errors": [{"message": message}]}})


def start(port: int = 0, host: str = "127.0.0.1") -> tuple[GcsStandIn, BackgroundServer]:
    """A running GCS stand-in and its server (stop it with `server.stop()`)."""
    standin = GcsStandIn()
    server = BackgroundServer(standin, host, port).start()
    standin.url = server.url
    return standin, server
