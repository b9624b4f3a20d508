"""A function served by functions-framework in its own process group: restartable on the same port
(so a push subscription reaches the new one) and killable as a whole (gunicorn master and worker)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from tests.servers import ROOT, SIGNATURES, ServedFunction


class Process:
    """One function on a fixed port, and every incarnation's output."""

    def __init__(self, name: str, port: int, env: dict[str, str], tmp: Path) -> None:
        self.name, self.port, self.env, self.tmp = name, port, env, tmp
        self.served: ServedFunction | None = None
        self.incarnations: list[ServedFunction] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Process:
        """Start functions-framework on this port (the same one after a kill)."""
        log = self.tmp / f"{self.name}-{self.port}-{len(self.incarnations)}.log"
        cmd = [str(Path(sys.executable).parent / "functions-framework"),
               f"--source=functions/{self.name}/main.py", f"--target={self.name}",
               f"--signature-type={SIGNATURES[self.name]}", f"--port={self.port}", "--host=127.0.0.1"]
        env = {**os.environ, "PYTHONPATH": str(ROOT), **self.env}
        with log.open("wb") as out:
            popen = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.served = ServedFunction(self.name, self.port, popen, log)
        self.incarnations.append(self.served)
        return self

    def wait_ready(self, timeout: float = 30.0) -> Process:
        """Block until it answers HTTP (any status)."""
        served = self.served
        assert served is not None, "start() first"
        path = "/healthz" if SIGNATURES[self.name] == "http" else "/"
        deadline = time.monotonic() + timeout
        while True:
            if served.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n" + "\n".join(served.log_lines()[-30:]))
            try:
                requests.get(self.url + path, timeout=5)
                return self
            except (requests.ConnectionError, requests.Timeout):  # a loaded machine answers slowly
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} did not start in {timeout}s") from None
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the whole process group at once: requests in flight die with it."""
        if self.served is not None and self.served.process.poll() is None:
            os.killpg(self.served.process.pid, signal.SIGKILL)
            self.served.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop it at teardown: a kill, since every effect is in PostgreSQL (a graceful stop takes ~2 s)."""
        self.kill()

    def log_lines(self) -> list[str]:
        """Every line every incarnation wrote so far."""
        return [line for served in self.incarnations for line in served.log_lines()]

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines, parsed (anything else, e.g. from gunicorn, is left out)."""
        records = []
        for line in self.log_lines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
        return records
