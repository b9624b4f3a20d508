"""Cold start: process start to first 200, ours against bare functions-framework functions.

1. generation `/healthz` vs a bare hello function (import hygiene; goal <= 1.3x).
2. generation `/readyz` vs a bare SELECT 1 function on the same database (goal <= 1.2x).
3. generation `/healthz` with tracing on (`TRACE_EXPORTER=gcp`) vs off: the SDK must not load at
   import or for an unsampled request (goal <= 1.05x).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from bench.stats import interleave, median, report

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "functions-framework"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def time_to_first_200(source: Path, target: str, path: str, env: dict[str, str]) -> float:
    """Seconds from spawning functions-framework to the first 200 on `path`."""
    port = _free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(BIN), f"--source={source}", f"--target={target}", f"--port={port}", "--host=127.0.0.1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}{path}", timeout=5).status_code == 200:
                    return time.perf_counter() - started
            except requests.ConnectionError:
                time.sleep(0.005)
            if proc.poll() is not None:
                raise RuntimeError(f"{source} exited with {proc.returncode}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main(database_url: str, rounds: int = 7) -> list[str]:
    """Run both comparisons and print the ratios."""
    env = {**os.environ, "DATABASE_URL": database_url, "GENERATION_BACKEND": "local", "LOG_LEVEL": "WARNING"}
    ours = ROOT / "functions" / "generation" / "main.py"
    hello = ROOT / "bench" / "baselines" / "hello" / "main.py"
    select1 = ROOT / "bench" / "baselines" / "select1" / "main.py"
    health = interleave(
        rounds,
        ours=lambda: time_to_first_200(ours, "generation", "/healthz", env),
        bare=lambda: time_to_first_200(hello, "hello", "/", env),
    )
    ready = interleave(
        rounds,
        ours=lambda: time_to_first_200(ours, "generation", "/readyz", env),
        bare=lambda: time_to_first_200(select1, "select1", "/", env),
    )
    traced = interleave(
        rounds,
        on=lambda: time_to_first_200(ours, "generation", "/healthz", {**env, "TRACE_EXPORTER": "gcp"}),
        off=lambda: time_to_first_200(ours, "generation", "/healthz", {**env, "TRACE_EXPORTER": "none"}),
    )
    return [
        report("cold start /healthz", median(health["ours"]), "bare functions-framework hello",
               median(health["bare"]), "s", "<= 1.3x"),
        report("cold start /readyz", median(ready["ours"]), "bare SQLAlchemy+pg8000 SELECT 1",
               median(ready["bare"]), "s", "<= 1.2x"),
        report("cold start /healthz, tracing on", median(traced["on"]), "tracing off (TRACE_EXPORTER=none)",
               median(traced["off"]), "s", "<= 1.05x"),
    ]
