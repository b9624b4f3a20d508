"""Image inputs: the cost of checking a 10 MB upload, and the size of what Vertex AI is sent.

1. Checking a 10 MB PNG PUT to the local upload route (stream it to disk, read its header and its
   last 12 bytes, move it into place) against reading the same stream once into a file. In the cloud
   the bytes never pass through a function: the check is one metadata call and one or two ranged reads.
2. The `:predictLongRunning` body google-genai sends for image-to-video with a first and a last frame
   as `gs://` URIs, against the same request with the 10 MB picture inlined as `bytesBase64Encoded`.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.stats import interleave, median, report

SIZE = 10 * 1024 * 1024


def ten_megabyte_png() -> bytes:
    """A real PNG of incompressible pixels, about 10 MB."""
    from shared.media import png

    side = int((SIZE / 3) ** 0.5)
    noise = os.urandom(side * side * 3)
    rows = [noise[y * side * 3 : (y + 1) * side * 3] for y in range(side)]
    return png.encode_png(side, side, rows)


def _check_put(data: bytes, folder: Path) -> float:
    from shared.tables import UploadRow
    from shared.uploads.images import ImageInfo
    from shared.uploads.store import LocalUploadStore
    from shared.uploads.uploads import inspect_stored

    store = LocalUploadStore(str(folder))
    upload_id = f"upl_{uuid.uuid4().hex}"  # every upload is a new file, as in use
    row = UploadRow(id=upload_id, declared_mime_type="image/png", size_bytes=len(data), uri="")
    started = time.perf_counter()
    received, size = store.receive(upload_id, io.BytesIO(data), len(data))
    outcome = inspect_stored(store.reader(received.as_uri()), row, size)
    assert isinstance(outcome, ImageInfo), outcome
    store.keep(upload_id, received)
    elapsed = time.perf_counter() - started
    (folder / "uploads" / upload_id).unlink()  # outside the timing, as for the baseline
    return elapsed


def _read_once(data: bytes, folder: Path) -> float:
    path = folder / f"plain-{uuid.uuid4().hex}"
    started = time.perf_counter()
    with path.open("wb") as handle:
        shutil.copyfileobj(io.BytesIO(data), handle, 1024 * 1024)
    elapsed = time.perf_counter() - started
    path.unlink()
    return elapsed


def measure_check(rounds: int = 9) -> tuple[float, float, int]:
    """Median seconds of (our check of a PUT, one plain read of it) and the picture's size."""
    data = ten_megabyte_png()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = interleave(rounds, ours=lambda: _check_put(data, folder), plain=lambda: _read_once(data, folder))
    return median(results["ours"]), median(results["plain"]), len(data)


def _body(standin: Any, backend: Any, fields: dict[str, Any]) -> int:
    from shared.media.request import GenerationRequest

    standin.reset()
    request = GenerationRequest.model_validate({"kind": "video", "prompt": "the cat walks to the window",
                                                "model": "veo-3.1-generate-preview", **fields})
    backend.start_video(request, job_id="gen_bench")
    [call] = standin.calls("predictLongRunning")
    return len(json.dumps(call.body, separators=(",", ":")))


def measure_body() -> tuple[int, int]:
    """Bytes of the Vertex request body with gs:// inputs, and with the 10 MB picture inlined."""
    from google.genai import types

    from shared.config import Settings
    from shared.media.vertex_backend import VertexBackend
    from tests.standin import vertex_server

    standin, server = vertex_server.start()
    try:
        settings = Settings(generation_backend="vertex", vertex_base_url=server.url, vertex_token="bench",
                            output_bucket="genmedia-bench", google_cloud_project="genmedia-bench")
        backend = VertexBackend(settings)
        hex_id = "0123456789abcdef" * 2
        first = {"uri": f"gs://genmedia-bench/uploads/upl_{hex_id}", "mime_type": "image/png"}
        last = {"uri": f"gs://genmedia-bench/images/gen_{hex_id}/0.png", "mime_type": "image/png"}
        ours = _body(standin, backend, {"image": first, "last_frame": last})
        data = ten_megabyte_png()
        standin.reset()
        backend.client().models.generate_videos(
            model="veo-3.1-generate-preview",
            source=types.GenerateVideosSource(prompt="the cat walks to the window",
                                              image=types.Image(image_bytes=data, mime_type="image/png")),
            config=types.GenerateVideosConfig(output_gcs_uri="gs://genmedia-bench/videos/gen_bench/",
                                              number_of_videos=1, duration_seconds=8, generate_audio=True,
                                              last_frame=types.Image(image_bytes=data, mime_type="image/png")))
        [call] = standin.calls("predictLongRunning")
        inline = len(json.dumps(call.body, separators=(",", ":")))
    finally:
        server.stop()
    return ours, inline


def main() -> list[str]:
    ours, plain, size = measure_check()
    lines = [report(f"upload check, {size / 2**20:.1f} MB PNG PUT locally", ours * 1000, "reading it once",
                    plain * 1000, "ms", "<= 1.5x")]
    body, inline = measure_body()
    lines.append(report("Vertex request body, first+last frame as gs://", body / 1024,
                        "the same frames inlined as base64", inline / 1024, "KiB", "< 2 KB"))
    return lines


if __name__ == "__main__":
    main()
