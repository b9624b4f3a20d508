"""`make run`'s program end to end: all three functions serve, a batch completes through the emulator it
starts, the development key works, and Ctrl-C stops everything it started."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from tests.e2e.conftest import skip_module_without_emulator, wait_until
from tests.servers import ROOT, free_port

skip_module_without_emulator()


def test_make_run_serves_all_three_and_ctrl_c_stops_everything(db: Any, tmp_path: Path) -> None:
    ports = {"GENERATION_PORT": free_port(), "BATCH_PORT": free_port(), "SCHEDULING_PORT": free_port()}
    env = {k: v for k, v in os.environ.items() if k not in ("PUBSUB_EMULATOR_HOST", "GENERATION_BACKEND")}
    env.update({name: str(port) for name, port in ports.items()})
    env.update({"DATABASE_URL": db.url, "LOCAL_DATA_DIR": str(tmp_path / "data"), "LOCAL_TICK_SECONDS": "1"})
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "devtools.run_local"], cwd=ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        key = wait_until(lambda: _dev_key(log), timeout=60, what="the development key")
        base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        for url in (base["GENERATION_PORT"], base["SCHEDULING_PORT"]):
            wait_until(lambda url=url: _ok(f"{url}/healthz"), timeout=120, what=f"{url} to serve")
        headers = {"Authorization": f"Bearer {key}"}
        batch = requests.post(f"{base['GENERATION_PORT']}/v1/batches", headers=headers, timeout=30,
                              json={"items": [{"kind": "image", "prompt": "a"}, {"kind": "image", "prompt": "b"}]})
        assert batch.status_code == 202, batch.text

        def finished() -> bool:
            got = requests.get(f"{base['GENERATION_PORT']}/v1/batches/{batch.json()['id']}", headers=headers,
                               timeout=10).json()
            return bool(got["status"] == "succeeded")

        wait_until(finished, timeout=60, interval=0.3, what="the batch to complete through the emulator")
        assert "local tick: POST http://127.0.0.1:" in log.read_text()
        _nobody_calls_the_tick(base, headers, db.url)
    finally:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's process group
        process.wait(timeout=60)
    # Servers finish their graceful shutdown within seconds of the program exiting; none survives.
    for port in ports.values():
        wait_until(lambda port=port: not _running(port), timeout=20, what=f"the server on {port} to stop")
        assert not _ok(f"http://127.0.0.1:{port}/healthz"), f"port {port} still served after Ctrl-C"


def _nobody_calls_the_tick(base: dict[str, str], headers: dict[str, str], url: str) -> None:
    """A one-off schedule fires and a batch's video finishes with only make run's own tick running."""
    from tests.integration.test_local_tick import make_due

    run_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    schedule = requests.post(f"{base['SCHEDULING_PORT']}/v1/schedules", headers=headers, timeout=30,
                             json={"request": {"kind": "image", "prompt": "once"}, "run_at": run_at}).json()
    make_due(url, schedule["id"])
    batch = requests.post(f"{base['GENERATION_PORT']}/v1/batches", headers=headers, timeout=30, json={"items": [
        {"kind": "image", "prompt": "a"}, {"kind": "video", "prompt": "waves", "duration_seconds": 4}]}).json()

    def fired() -> bool:
        runs = requests.get(f"{base['SCHEDULING_PORT']}/v1/schedules/{schedule['id']}", headers=headers,
                            timeout=10).json()["runs"]
        return bool(runs)

    def video_done() -> bool:
        got = requests.get(f"{base['GENERATION_PORT']}/v1/batches/{batch['id']}", headers=headers, timeout=10)
        return bool(got.json()["status"] == "succeeded")

    wait_until(fired, timeout=60, interval=0.5, what="the one-off schedule to fire by make run's tick")
    wait_until(video_done, timeout=90, interval=0.5, what="the batch video to finish by make run's tick")


def _dev_key(log: Path) -> str | None:
    match = re.search(r"development API key \(admin\): (gm_\S+)", log.read_text(errors="replace"))
    return match.group(1) if match else None


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _running(port: int) -> bool:
    found = subprocess.run(["pgrep", "-f", f"--port={port}"], capture_output=True, text=True)
    return bool(found.stdout.strip())
