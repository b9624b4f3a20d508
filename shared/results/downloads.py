"""Download links for outputs: minted with no I/O, checked and served by `GET /v1/files/{object}`.

A link is `{base}/v1/files/{object}?expires={unix}&signature={hmac}`, where `object` is the output's
name inside the output store (`images/gen_.../0.png`, the same locally and in Cloud Storage). Minting
is one HMAC: no database, no Google call, nothing stored. Fetching it checks the signature and expiry,
then streams the local file, or answers 302 to a V4-signed Cloud Storage URL made through IAM
signBlob: exactly one Google call per download actually made, none per link handed out.
"""

from __future__ import annotations

import mimetypes
import re
import time
import urllib.parse
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from shared.config import Settings, get_settings
from shared.exceptions import NotFoundError
from shared.results.signing import InvalidSignatureError, signer_for

__all__ = ["PURPOSE", "Download", "mint_url", "object_key", "resolve_download"]

PURPOSE = "download"
ROUTE = "/v1/files/"
_OBJECT = re.compile(r"^(?:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}/){0,4}[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_TYPES = {".jsonl": "application/jsonl", ".png": "image/png", ".mp4": "video/mp4", ".jpg": "image/jpeg",
          ".webp": "image/webp"}


def _local_root(settings: Settings) -> Path:
    return _resolved(settings.local_data_dir)


@lru_cache(maxsize=8)
def _resolved(folder: str) -> Path:
    # Cached: resolving walks the file system, and a page of 100 jobs mints a link per output.
    return Path(folder).resolve()


def object_key(uri: str, settings: Settings | None = None) -> str | None:
    """The output store's name for `uri` (`images/gen_x/0.png`), or None when it is not in our store."""
    settings = settings or get_settings()
    key: str | None = None
    if uri.startswith("gs://") and settings.output_bucket:
        prefix = f"gs://{settings.output_bucket}/"
        key = uri[len(prefix):] if uri.startswith(prefix) else None
    elif uri.startswith("file://"):
        path = urllib.parse.unquote(urllib.parse.urlsplit(uri).path)
        root = f"{_local_root(settings)}/"
        key = path[len(root):] if path.startswith(root) else None
    return key if key is not None and _OBJECT.match(key) and ".." not in key.split("/") else None


def _base_url(settings: Settings) -> str | None:
    if settings.download_base_url:
        return settings.download_base_url.rstrip("/")
    import flask  # imported by every HTTP function already; links minted elsewhere need the setting

    if not flask.has_request_context():
        return None
    cached: str | None = flask.g.get("genmedia_base_url")
    if cached is None:  # once per request: a page of jobs mints a link per output
        request = flask.request
        # Cloud Run's front end terminates TLS and says so; werkzeug alone would see plain http.
        scheme = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
        cached = flask.g.genmedia_base_url = f"{scheme if scheme in ('http', 'https') else 'https'}://{request.host}"
    return cached


def mint_url(uri: str, *, now: float | None = None) -> str | None:
    """A link anyone can GET until it expires, or None where none can be made (no pepper or base URL,
    or an output outside our store). Pure computation: one HMAC."""
    settings = get_settings()
    signer = signer_for(PURPOSE)
    key = object_key(uri, settings)
    base = _base_url(settings) if signer is not None and key is not None else None
    if signer is None or key is None or base is None:
        return None
    expires = int(now if now is not None else time.time()) + settings.download_url_ttl_seconds
    # No quoting needed: the key matched _OBJECT (URL-safe characters only), the signature is base64url.
    return f"{base}{ROUTE}{key}?expires={expires}&signature={signer.sign(key, expires)}"


@dataclass(frozen=True)
class Download:
    """What to answer for a valid link: a local file to stream, or where to redirect."""

    mime_type: str
    seconds_left: int
    path: Path | None = None
    redirect: str | None = None


def _verify(key: str, expires: str | None, signature: str | None) -> int:
    signer = signer_for(PURPOSE)
    if signer is None or not expires or not signature or not expires.isdigit() or len(expires) > 12:
        raise InvalidSignatureError()
    # Verified before the name is even looked at: a forged link learns nothing about what exists.
    signer.verify(key, int(expires), signature)
    if not _OBJECT.match(key) or ".." in key.split("/"):
        raise InvalidSignatureError()  # unreachable for links we minted; kept as a second lock
    return int(expires)


def resolve_download(key: str, expires: str | None, signature: str | None) -> Download:
    """Check a link (403 when changed, foreign or expired) and say how to deliver its object."""
    expires_at = _verify(key, expires, signature)
    settings = get_settings()
    seconds_left = max(1, expires_at - int(time.time()))
    suffix = Path(key).suffix.lower()
    mime_type = _TYPES.get(suffix) or mimetypes.guess_type(key)[0] or "application/octet-stream"
    if settings.generation_backend == "local":
        root = _local_root(settings)
        path = (root / key).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise NotFoundError("the file no longer exists")
        return Download(mime_type, seconds_left, path=path)
    from shared.results.gcs_links import signed_gcs_url

    return Download(mime_type, seconds_left, redirect=signed_gcs_url(key, seconds_left))
