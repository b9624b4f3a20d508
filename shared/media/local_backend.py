"""The offline backend (GENERATION_BACKEND=local): real PNG and MP4 files under LOCAL_DATA_DIR.

Videos go through the same asynchronous lifecycle as Veo: `start_video` records the operation in a
file (so another process, e.g. the scheduling tick, can poll it) and `poll_video` answers None until
the operation is old enough, then writes the video.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.exceptions import VeoGenerationError
from shared.media import local_media
from shared.media.backends import MediaBackend
from shared.media.capabilities import capabilities_for, resolve
from shared.media.request import GenerationRequest, MediaOutput
from shared.media.storage import OutputStorageError, job_prefix

if TYPE_CHECKING:
    from shared.config import Settings

OPERATION_PREFIX = "local-operations/"
_OPERATION = re.compile(r"^local-operations/([0-9a-f]{32})$")
DEFAULT_VIDEO_DELAY_SECONDS = 2.0


class LocalBackend(MediaBackend):
    """Generates placeholder media on disk; no network, no credentials."""

    name = "local"

    def __init__(self, settings: Settings, *, video_delay_seconds: float | None = None) -> None:
        self.root = Path(settings.local_data_dir).resolve()
        if video_delay_seconds is None:
            # LOCAL_VIDEO_DELAY_SECONDS, once config.py has it; the default keeps the demo snappy.
            configured = getattr(settings, "local_video_delay_seconds", DEFAULT_VIDEO_DELAY_SECONDS)
            video_delay_seconds = float(configured)
        self.video_delay_seconds = video_delay_seconds

    def generate_image(self, request: GenerationRequest, *, job_id: str) -> list[MediaOutput]:
        request = resolve(request)
        width, height = local_media.image_size(request.aspect_ratio, request.resolution)
        outputs = []
        for index in range(request.number_of_outputs or 1):
            seed = local_media.seed_of(request, index)
            if request.image or request.input_images:
                data = self._inputs().edited_png(request, self.root, (width, height), seed)
            else:
                data = local_media.render_png(seed, width, height)
            path = self._write(f"{job_prefix('image', job_id)}{index}.png", data)
            outputs.append(MediaOutput(uri=path.as_uri(), mime_type="image/png"))
        return outputs

    def start_video(self, request: GenerationRequest, *, job_id: str) -> str:
        request = resolve(request)
        operation_id = uuid.uuid4().hex
        record = {"job_id": job_id, "started_at": time.time(), "request": request.model_dump(mode="json")}
        self._write(f"operations/{operation_id}.json", json.dumps(record).encode())
        return OPERATION_PREFIX + operation_id

    def poll_video(self, operation_name: str, *, model: str, job_id: str) -> list[MediaOutput] | None:
        started_at, request = self._operation(operation_name)
        if time.time() - started_at < self.video_delay_seconds:
            return None
        seconds = request.duration_seconds or capabilities_for(str(request.model)).default_duration or 8
        width, height = local_media.video_size(request.aspect_ratio)
        outputs = []
        for index in range(request.number_of_outputs or 1):
            relative = f"{job_prefix('video', job_id)}{index}.mp4"
            path = self.root / relative
            # Polls may race (HTTP GET and the scheduling tick): the first writes, the others reuse.
            if not path.exists():
                path = self._write(relative, self._video(request, index, (width, height), seconds))
            outputs.append(MediaOutput(uri=path.as_uri(), mime_type="video/mp4"))
        return outputs

    def _video(self, request: GenerationRequest, index: int, size: tuple[int, int], seconds: int) -> bytes:
        """The MP4 of one output: from the input image when there is one, else drifting stripes."""
        if request.image is None:
            return local_media.render_mp4(local_media.seed_of(request, index), *size, seconds)
        frames = self._inputs().video_frames(request, self.root, size, seconds * local_media.VIDEO_FPS)
        return local_media.encode_mp4(frames, *size)

    @staticmethod
    def _inputs() -> Any:
        """shared.media.local_inputs, imported on the first request with an input (it loads Pillow)."""
        from shared.media import local_inputs

        return local_inputs

    def _operation(self, operation_name: str) -> tuple[float, GenerationRequest]:
        """When the operation started and what it generates, or a terminal error when there is none."""
        match = _OPERATION.match(operation_name)
        try:
            if match is None:
                raise FileNotFoundError(operation_name)
            path = self.root / "operations" / f"{match.group(1)}.json"
            record: dict[str, Any] = json.loads(path.read_text())
            return float(record["started_at"]), GenerationRequest.model_validate(record["request"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            err = VeoGenerationError("the video operation does not exist", detail=f"{type(exc).__name__}")
            err.reason = "VIDEO_OPERATION_NOT_FOUND"
            raise err from exc

    def _write(self, relative: str, data: bytes) -> Path:
        """Write atomically (temp file + rename) so a reader never sees half a file."""
        path = self.root / relative
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide the media from a local file server
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            raise OutputStorageError(detail=f"local write failed: {type(exc).__name__}") from exc
        return path
