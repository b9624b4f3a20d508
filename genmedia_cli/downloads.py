"""Downloading outputs and results files through their signed links: no key is sent (the link is the
credential), files land whole (written beside, then renamed), and names come from custom ids."""

from __future__ import annotations

import os
import re
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from genmedia_cli import __version__
from genmedia_cli.errors import ApiError, TransportError

_SAFE = re.compile(r"[^A-Za-z0-9._:-]")
EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "video/mp4": ".mp4"}


def fetch(url: str, destination: Path, *, timeout: float = 120.0) -> int:
    """GET `url` into `destination` (replaced whole, never left half-written); the bytes written."""
    request = urllib.request.Request(url, headers={"User-Agent": f"genmedia-cli/{__version__}"})
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=".genmedia-")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, os.fdopen(fd, "wb") as handle:
            size = 0
            while chunk := response.read(1 << 16):
                handle.write(chunk)
                size += len(chunk)
        os.replace(tmp, destination)
        return size
    except urllib.error.HTTPError as err:
        raise ApiError.from_response(err.code, err.read(), err.headers) from None
    except (urllib.error.URLError, OSError) as err:
        raise TransportError(f"cannot download {destination.name}: {getattr(err, 'reason', err)}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def output_names(job: dict[str, Any], index: int) -> list[str]:
    """File names for a job's outputs: its custom_id (or `item-0007`), `-2`, `-3` for further outputs."""
    stem = _SAFE.sub("_", job.get("custom_id") or f"item-{index:04d}")
    names = []
    for number, output in enumerate(job.get("outputs") or []):
        suffix = EXTENSIONS.get(output.get("mime_type", ""), "")
        names.append(f"{stem}{'' if number == 0 else f'-{number + 1}'}{suffix}")
    return names


def numbered(path: Path, count: int) -> list[Path]:
    """`path` for one output; `stem-2.ext`, `stem-3.ext`... after it for more."""
    return [path if i == 0 else path.with_name(f"{path.stem}-{i + 1}{path.suffix}") for i in range(count)]
