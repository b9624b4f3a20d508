"""Image inputs end to end, over real HTTP on the local backend: upload a PNG, animate it, chain a video
from an image job's output, then a batch of 10 image-to-video items through the Pub/Sub emulator."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import av
import pytest
import requests
from PIL import Image, ImageChops, ImageOps, ImageStat

from tests.e2e.conftest import Pipeline, skip_module_without_emulator, wait_until

skip_module_without_emulator()
pytestmark = pytest.mark.e2e


def picture(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", (480, 270), colour)
    image.paste((250, 250, 250), (0, 0, 240, 135))
    image.save(out, "PNG")
    return out.getvalue()


def upload(pipeline: Pipeline, data: bytes) -> str:
    """POST /v1/uploads, then PUT the bytes with nothing but the signed URL and its headers."""
    created = pipeline.http.post(f"{pipeline.generation.url}/v1/uploads",
                                 json={"mime_type": "image/png", "size_bytes": len(data)}, timeout=10)
    assert created.status_code == 201, created.text
    body = created.json()
    put = requests.put(body["upload_url"], data=data, headers=body["upload_headers"], timeout=10)
    assert put.status_code == 200, put.text
    assert put.json()["status"] == "ready"
    return str(body["upload_id"])


def finished(pipeline: Pipeline, job_id: str) -> dict[str, Any]:
    """The job once it ends (reading a running video is what advances it)."""
    job: dict[str, Any] = wait_until(
        lambda: (j := pipeline.get_job(job_id))["status"] in ("succeeded", "failed") and j,
        timeout=30, interval=0.2, what=f"{job_id} to finish")
    return job


def first_frame_matches(video: dict[str, Any], data: bytes) -> bool:
    with av.open(urlsplit(video["outputs"][0]["uri"]).path) as container:
        frame = next(container.decode(video=0)).to_image().convert("RGB")
    expected = ImageOps.fit(Image.open(io.BytesIO(data)).convert("RGB"), frame.size)
    return sum(ImageStat.Stat(ImageChops.difference(frame, expected)).mean) / 3 < 6


def generate(pipeline: Pipeline, body: dict[str, Any]) -> dict[str, Any]:
    response = pipeline.http.post(f"{pipeline.generation.url}/v1/generations", json=body, timeout=30)
    assert response.status_code in (201, 202), response.text
    job: dict[str, Any] = response.json()
    return job


def test_upload_animate_chain_and_batch(make_pipeline: Callable[..., Pipeline]) -> None:
    pipeline = make_pipeline(generation_env={"LOCAL_VIDEO_DELAY_SECONDS": "0.5", "VIDEO_POLL_INTERVAL_SECONDS": "0"},
                             batch_env={"LOCAL_VIDEO_DELAY_SECONDS": "0.5", "VIDEO_POLL_INTERVAL_SECONDS": "0"})
    cat = picture((200, 60, 40))
    cat_id = upload(pipeline, cat)

    video = finished(pipeline, generate(pipeline, {"kind": "video", "prompt": "the cat stretches",
                                                   "duration_seconds": 4, "image": {"upload_id": cat_id}})["id"])
    assert video["status"] == "succeeded" and first_frame_matches(video, cat)

    image = generate(pipeline, {"kind": "image", "prompt": "a lighthouse", "aspect_ratio": "16:9"})
    chained = finished(pipeline, generate(pipeline, {"kind": "video", "prompt": "waves hit it", "duration_seconds": 4,
                                                     "image": {"job_id": image["id"], "output": 0}})["id"])
    with open(urlsplit(image["outputs"][0]["uri"]).path, "rb") as handle:
        assert chained["status"] == "succeeded" and first_frame_matches(chained, handle.read())

    pictures = [picture((20 * i, 255 - 20 * i, 90)) for i in range(10)]
    ids = [upload(pipeline, data) for data in pictures]
    batch = pipeline.submit([{"kind": "video", "prompt": f"animate {i}", "duration_seconds": 4,
                              "image": {"upload_id": upload_id}} for i, upload_id in enumerate(ids)])
    assert batch["total"] == 10
    jobs = [finished(pipeline, f"{batch['id']}_{i:04d}") for i in range(10)]
    assert [j["status"] for j in jobs] == ["succeeded"] * 10
    assert all(first_frame_matches(job, data) for job, data in zip(jobs, pictures, strict=True))
    assert pipeline.wait_finished(batch["id"], timeout=30)["counts"]["succeeded"] == 10
