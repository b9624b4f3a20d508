"""`POST /v1/generations` throughput (image, stand-in answering at once) against the SDK called directly.

Ours: the generation function served by functions-framework, a real PostgreSQL, the real google-genai
client to the Vertex stand-in, a key checked and a job recorded per request. Baseline: a loop calling
google-genai directly against the same stand-in (bench/bench_vertex_direct.py). Same model, same
concurrency, both over HTTP to the same stand-in process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from bench.bench_vertex_direct import MODEL, measure_direct, standin_process
from bench.stats import report

ROOT = Path(__file__).resolve().parent.parent


def _mint_key(database_url: str) -> str:
    from devtools.api_key import mint_key

    return mint_key("bench", ["generate"], pepper=os.environ["API_KEY_PEPPER"])


def _serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    binary = Path(sys.executable).parent / "functions-framework"
    return subprocess.Popen(
        [str(binary), "--source=functions/generation/main.py", "--target=generation", f"--port={port}",
         "--host=127.0.0.1"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure_ours(url: str, key: str, *, concurrency: int, count: int) -> float:
    """Requests per second of `count` image generations over `concurrency` keep-alive clients."""
    sessions = [requests.Session() for _ in range(concurrency)]
    body = {"kind": "image", "prompt": "a lighthouse at dawn", "model": MODEL}
    headers = {"Authorization": f"Bearer {key}"}

    def one(i: int) -> None:
        response = sessions[i % concurrency].post(f"{url}/v1/generations", json=body, headers=headers, timeout=30)
        assert response.status_code == 201 and response.json()["status"] == "succeeded", response.text[:300]

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(20)))
        started = time.perf_counter()
        list(pool.map(one, range(count)))
        return count / (time.perf_counter() - started)


def _wait(url: str) -> None:
    for _ in range(400):
        try:
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("the generation function did not become ready")


def main(database_url: str, count: int = 300) -> list[str]:
    """Both concurrencies, ours then the direct loop, and the ratios."""
    from tests.servers import free_port

    key = _mint_key(database_url)
    lines = []
    with standin_process() as standin:
        port = free_port()
        env = {**os.environ, "DATABASE_URL": database_url, "GENERATION_BACKEND": "vertex",
               "VERTEX_BASE_URL": standin, "VERTEX_TOKEN": "bench", "OUTPUT_BUCKET": "genmedia-bench",
               "GOOGLE_CLOUD_PROJECT": "genmedia-bench", "FUNCTION_CONCURRENCY": "8", "RATE_LIMIT_GENERATE": "0",
               "LOG_LEVEL": "WARNING"}
        server = _serve(env, port)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait(url)
            for concurrency in (1, 8):
                ours = measure_ours(url, key, concurrency=concurrency, count=count)
                direct = measure_direct(standin, concurrency=concurrency, requests=count)
                lines.append(report(f"POST /v1/generations c={concurrency}", ours, "direct google-genai loop",
                                    direct, "req/s", ">= 0.7x"))
        finally:
            server.terminate()
            server.wait(timeout=10)
    return lines
