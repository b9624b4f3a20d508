"""Baseline for `POST /v1/generations` throughput: google-genai called directly against the stand-in.

`measure_direct(url, concurrency=8)` is the requests per second of a bare loop of image generations
(one shared client, `concurrency` threads), the same SDK call our Vertex backend makes, with nothing
of ours around it. Use the same model on both sides: Imagen (the default here) is answered with
gcsUri, so neither side uploads anything; the Gemini image models answer bytes, which our backend
uploads to OUTPUT_BUCKET and this loop would not.

Standalone: `python -m bench.bench_vertex_direct [--url URL]` (without --url it starts the stand-in
in a subprocess, as the function under test would run in its own process too).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODEL = "imagen-4.0-generate-001"


def _client(url: str) -> Any:
    import warnings

    from google import genai
    from google.genai import types
    from google.oauth2.credentials import Credentials

    warnings.filterwarnings("ignore", message="The generate_images method is deprecated")
    return genai.Client(
        vertexai=True, project="genmedia-bench", location="us-central1",
        credentials=Credentials(token="bench"),  # type: ignore[no-untyped-call]
        http_options=types.HttpOptions(api_version="v1", base_url=url, timeout=30_000),
    )


def measure_direct(url: str, *, concurrency: int = 1, requests: int = 400, model: str = MODEL) -> float:
    """Requests per second of `requests` generate_images calls spread over `concurrency` threads."""
    from google.genai import types

    client = _client(url)
    config = types.GenerateImagesConfig(number_of_images=1, output_gcs_uri="gs://genmedia-bench/images/bench/",
                                        include_rai_reason=True)

    def one(_: int) -> None:
        response = client.models.generate_images(model=model, prompt="a lighthouse at dawn", config=config)
        assert response.generated_images, "the stand-in answered no image"

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(min(20, requests))))  # warm the connection pool and the imports
        started = time.perf_counter()
        list(pool.map(one, range(requests)))
        return requests / (time.perf_counter() - started)


@contextmanager
def standin_process(port: int = 0) -> Iterator[str]:
    """The Vertex stand-in in its own process; yields its URL."""
    port = port or _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.standin.vertex_server", "--port", str(port)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        process.stdout.readline()  # it prints one line once it listens
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running Vertex stand-in (default: start one)")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--model", default=MODEL)
    args = parser.parse_args()

    def run(url: str) -> None:
        for concurrency in (1, 8):
            rps = measure_direct(url, concurrency=concurrency, requests=args.requests, model=args.model)
            print(f"direct google-genai {args.model} c={concurrency}: {rps:.1f} req/s", flush=True)

    if args.url:
        run(args.url)
    else:
        with standin_process() as url:
            run(url)


if __name__ == "__main__":
    main()
