"""GENERATION_BACKEND=local: real files on disk, and the asynchronous video lifecycle."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlparse

import av
import pytest
from PIL import Image

from shared.config import Settings
from shared.exceptions import ValidationError, VeoGenerationError
from shared.media.local_backend import LocalBackend
from shared.media.request import GenerationRequest


def backend(tmp_path: Path, delay: float = 0.0) -> LocalBackend:
    return LocalBackend(
        Settings(generation_backend="local", local_data_dir=str(tmp_path)), video_delay_seconds=delay
    )


def path_of(uri: str) -> Path:
    parsed = urlparse(uri)
    assert parsed.scheme == "file"
    return Path(parsed.path)


def test_an_image_is_a_real_png_under_the_data_dir(tmp_path: Path) -> None:
    request = GenerationRequest(kind="image", prompt="a red fox", aspect_ratio="16:9", number_of_outputs=1)
    outputs = backend(tmp_path).generate_image(request, job_id="job-1")
    assert [o.mime_type for o in outputs] == ["image/png"]
    path = path_of(outputs[0].uri)
    assert path.is_relative_to(tmp_path) and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.load()
        assert (image.format, image.size) == ("PNG", (1024, 576))


def test_each_requested_image_is_its_own_file(tmp_path: Path) -> None:
    request = GenerationRequest(
        kind="image", prompt="tulips", model="imagen-4.0-generate-001", number_of_outputs=3
    )
    outputs = backend(tmp_path).generate_image(request, job_id="job-2")
    paths = [path_of(o.uri) for o in outputs]
    assert len(set(paths)) == 3 and len({p.read_bytes() for p in paths}) == 3


def test_local_requests_are_validated_like_vertex_ones(tmp_path: Path) -> None:
    request = GenerationRequest(
        kind="image", prompt="x", model="imagen-4.0-generate-001", negative_prompt="y"
    )
    with pytest.raises(ValidationError) as caught:
        backend(tmp_path).generate_image(request, job_id="job-3")
    assert caught.value.violations[0].field == "negative_prompt"


def test_a_job_id_cannot_escape_the_data_dir(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="job_id"):
        backend(tmp_path).generate_image(GenerationRequest(kind="image", prompt="x"), job_id="../../etc")


def test_a_video_is_pending_until_its_delay_then_a_real_mp4(tmp_path: Path) -> None:
    request = GenerationRequest(kind="video", prompt="waves", duration_seconds=4, aspect_ratio="9:16")
    local = backend(tmp_path, delay=0.3)
    operation = local.start_video(request, job_id="job-4")
    assert operation.startswith("local-operations/")
    assert local.poll_video(operation, model="veo-3.0-fast-generate-001", job_id="job-4") is None
    time.sleep(0.35)
    outputs = local.poll_video(operation, model="veo-3.0-fast-generate-001", job_id="job-4")
    assert outputs is not None and [o.mime_type for o in outputs] == ["video/mp4"]
    with av.open(str(path_of(outputs[0].uri)), mode="r") as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 144, 256)
        assert container.duration == 4_000_000
    # Polling again (the tick racing a GET) gives the same outputs and rewrites nothing.
    mtime = path_of(outputs[0].uri).stat().st_mtime_ns
    assert local.poll_video(operation, model="veo-3.0-fast-generate-001", job_id="job-4") == outputs
    assert path_of(outputs[0].uri).stat().st_mtime_ns == mtime


def test_another_process_can_finish_a_video_this_one_started(tmp_path: Path) -> None:
    operation = backend(tmp_path).start_video(GenerationRequest(kind="video", prompt="rain"), job_id="job-5")
    outputs = backend(tmp_path).poll_video(operation, model="veo-3.0-fast-generate-001", job_id="job-5")
    assert outputs is not None and path_of(outputs[0].uri).exists()


@pytest.mark.parametrize(
    "name", ["local-operations/unknown", "projects/p/operations/1", "local-operations/" + "0" * 32]
)
def test_an_unknown_operation_fails_for_good(tmp_path: Path, name: str) -> None:
    with pytest.raises(VeoGenerationError) as caught:
        backend(tmp_path).poll_video(name, model="veo-3.0-fast-generate-001", job_id="job-6")
    assert caught.value.reason == "VIDEO_OPERATION_NOT_FOUND" and not caught.value.retryable


def test_a_corrupted_operation_record_fails_for_good(tmp_path: Path) -> None:
    local = backend(tmp_path)
    operation = local.start_video(GenerationRequest(kind="video", prompt="snow"), job_id="job-7")
    (tmp_path / "operations" / f"{operation.rsplit('/', 1)[1]}.json").write_text('{"started_at": 0}')
    with pytest.raises(VeoGenerationError) as caught:
        local.poll_video(operation, model="veo-3.0-fast-generate-001", job_id="job-7")
    assert caught.value.reason == "VIDEO_OPERATION_NOT_FOUND"
