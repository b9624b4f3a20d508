"""Per-request overhead of our decorator + logging on a route without database, vs the bare function.

Two views of the same thing: in one process through the WSGI test client (the strictest: nothing
but the two functions' own work), and over real HTTP to functions-framework servers (the latency a
client sees). The access log line is rendered in full and written to /dev/null in both.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from bench.stats import interleave, median, report

ROOT = Path(__file__).resolve().parent.parent
OURS = ("generation", ROOT / "functions" / "generation" / "main.py", "/healthz")
BARE = ("hello", ROOT / "bench" / "baselines" / "hello" / "main.py", "/")


def _client(target: str, source: Path) -> Any:
    import functions_framework

    return functions_framework.create_app(target=target, source=str(source), signature_type="http").test_client()


def _in_process(client: Any, path: str, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        response = client.get(path)
        assert response.status_code == 200
    return (time.perf_counter() - started) / n * 1e6


def _over_http(session: requests.Session, url: str, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        response = session.get(url)
        assert response.status_code == 200
    return (time.perf_counter() - started) / n * 1e6


def _serve(target: str, source: Path, port: int) -> subprocess.Popen[bytes]:
    binary = Path(sys.executable).parent / "functions-framework"
    return subprocess.Popen([str(binary), f"--source={source}", f"--target={target}", f"--port={port}",
                             "--host=127.0.0.1"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait(url: str) -> None:
    for _ in range(400):
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.025)
    raise RuntimeError(f"{url} never answered")


def in_process(rounds: int, n: int) -> str:
    """Both functions in this process, interleaved rounds, median per-request microseconds."""
    os.environ["LOG_LEVEL"] = "INFO"
    ours = _client(OURS[0], OURS[1])
    from shared.logging import configure_logging

    configure_logging(stream=open(os.devnull, "w"))
    bare = _client(BARE[0], BARE[1])
    _in_process(ours, OURS[2], 200), _in_process(bare, BARE[2], 200)
    results = interleave(rounds, ours=lambda: _in_process(ours, OURS[2], n),
                         bare=lambda: _in_process(bare, BARE[2], n))
    return report("per-request overhead, in process", median(results["ours"]), "bare functions-framework hello",
                  median(results["bare"]), "us/request", "<= 1.15x")


def over_http(rounds: int, n: int) -> str:
    """Both functions served by functions-framework, one keep-alive client, median latency."""
    from tests.servers import free_port

    ports = {"ours": free_port(), "bare": free_port()}
    procs = [_serve(OURS[0], OURS[1], ports["ours"]), _serve(BARE[0], BARE[1], ports["bare"])]
    try:
        urls = {"ours": f"http://127.0.0.1:{ports['ours']}{OURS[2]}", "bare": f"http://127.0.0.1:{ports['bare']}/"}
        for url in urls.values():
            _wait(url)
        sessions = {name: requests.Session() for name in urls}
        results = interleave(rounds, **{name: (lambda name=name: _over_http(sessions[name], urls[name], n))
                                        for name in urls})
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
    return report("per-request latency, over HTTP", median(results["ours"]), "bare functions-framework hello",
                  median(results["bare"]), "us/request", "<= 1.15x")


def main(rounds: int = 15, n: int = 300) -> list[str]:
    """Both measurements."""
    return [in_process(rounds, n), over_http(rounds, n)]
