"""Serving functions for tests: in-process test clients and real functions-framework processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
SIGNATURES = {"generation": "http", "batch": "cloudevent", "scheduling": "http"}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_client(function: str, source: Path | None = None, *, key: str | None = None) -> Any:
    """A Flask test client of one function, loaded the way functions-framework loads it.

    With `key`, every request carries `Authorization: Bearer <key>` unless it sets its own.
    """
    import functions_framework

    app = functions_framework.create_app(
        target=function, source=str(source or ROOT / "functions" / function / "main.py"),
        signature_type=SIGNATURES.get(function, "http"),
    )
    client = app.test_client()
    if key:
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client


class ServedFunction:
    """A function served by a real functions-framework process, and what it printed."""

    def __init__(self, name: str, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
        self.name = name
        self.url = f"http://127.0.0.1:{port}"
        self.process = process
        self.log_path = log

    def log_lines(self) -> list[str]:
        """Every line the process wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace").splitlines()


@contextmanager
def serve(name: str, env: dict[str, str] | None = None, *, tmp: Path, ready_path: str = "/healthz",
          timeout: float = 30.0) -> Iterator[ServedFunction]:
    """Start `functions-framework` for one function, wait until it answers, stop it after."""
    port = free_port()
    log = tmp / f"{name}-{port}.log"
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    cmd = [
        str(Path(sys.executable).parent / "functions-framework"),
        f"--source=functions/{name}/main.py", f"--target={name}",
        f"--signature-type={SIGNATURES[name]}", f"--port={port}", "--host=127.0.0.1",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    served = ServedFunction(name, port, process, log)
    try:
        _wait_ready(served, ready_path, timeout)
        yield served
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_ready(served: ServedFunction, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            raise RuntimeError(f"{served.name} exited:\n" + "\n".join(served.log_lines()[-30:]))
        try:
            if SIGNATURES[served.name] == "cloudevent":
                requests.get(served.url + "/", timeout=5)
            else:
                requests.get(served.url + path, timeout=5)
            return
        except (requests.ConnectionError, requests.Timeout):  # a loaded machine answers slowly
            time.sleep(0.05)
    raise RuntimeError(f"{served.name} did not start in {timeout}s")


@pytest.fixture
def generation_client(db: Any, api_key: str) -> Any:
    """Test client of the generation function, on the test database, with an API key."""
    return make_client("generation", key=api_key)


@pytest.fixture
def scheduling_client(db: Any, api_key: str) -> Any:
    """Test client of the scheduling function, on the test database, with an API key."""
    return make_client("scheduling", key=api_key)


@pytest.fixture
def batch_client(db: Any) -> Any:
    """Test client of the batch function, on the test database."""
    return make_client("batch")
