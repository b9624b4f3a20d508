"""A batch fleet over the emulator: the generation function, several batch function processes fed by
the push driver at cloud-like concurrency, a Cloud Scheduler stand-in ticking every quota window, and
the Vertex AI stand-in enforcing a quota. Used by the pacing tests and `make bench`."""

from __future__ import annotations

import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.e2e.push_driver import PushDriver, create_pull_subscription
from tests.e2e.served import Process
from tests.servers import free_port

FINAL = ("succeeded", "partially_failed", "failed")


@dataclass
class Fleet:
    """Started by `start_fleet`; everything stops with the ExitStack it was given."""

    generation: Process
    batches: list[Process]
    driver: PushDriver
    http: requests.Session = field(default_factory=requests.Session)

    def submit(self, items: list[dict[str, Any]], key: str) -> dict[str, Any]:
        response = self.http.post(f"{self.generation.url}/v1/batches", json={"items": items},
                                  headers={"Authorization": f"Bearer {key}"}, timeout=120)
        assert response.status_code == 202, response.text
        batch: dict[str, Any] = response.json()
        return batch

    def get_batch(self, batch_id: str, key: str) -> dict[str, Any]:
        response = self.http.get(f"{self.generation.url}/v1/batches/{batch_id}",
                                 headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert response.status_code == 200, response.text
        batch: dict[str, Any] = response.json()
        return batch

    def wait_finished(self, batch_id: str, key: str, timeout: float) -> tuple[dict[str, Any], float]:
        """(the finished batch, the monotonic time it was seen finished); fails past `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            batch = self.get_batch(batch_id, key)
            if batch["status"] in FINAL:
                return batch, time.monotonic()
            assert time.monotonic() < deadline, f"batch not finished after {timeout} s: {batch}"
            time.sleep(0.1)

    def log_records(self) -> list[dict[str, Any]]:
        return [r for p in self.batches for r in p.log_records()]


def start_fleet(stack: ExitStack, emulator: Any, env: dict[str, str], tmp: Path, *, processes: int = 4,
                concurrency: int = 32) -> Fleet:
    """Topic, pull subscription, generation + `processes` batch processes, and the push driver."""
    suffix = uuid.uuid4().hex[:8]
    topic = emulator.create_topic(f"fleet-{suffix}")
    subscription = create_pull_subscription(emulator, f"fleet-pull-{suffix}", topic)
    stack.callback(emulator.delete_subscription, subscription)
    threads = str(max(1, concurrency // processes))
    common = {**env, "PUBSUB_EMULATOR_HOST": emulator.host, "PUBSUB_BATCH_TOPIC": topic,
              "FUNCTION_CONCURRENCY": threads, "THREADS": threads}
    generation = Process("generation", free_port(), common, tmp)
    batches = [Process("batch", free_port(), common, tmp) for _ in range(processes)]
    for process in (generation, *batches):
        stack.callback(process.stop)
        process.start()
    for process in (generation, *batches):
        process.wait_ready()
    driver = PushDriver(emulator.host, subscription, [p.url + "/" for p in batches], concurrency=concurrency)
    stack.enter_context(driver)
    return Fleet(generation, batches, driver)


class Ticker:
    """Cloud Scheduler's tick, in this process, every `every` seconds (settings from os.environ)."""

    def __init__(self, every: float) -> None:
        self.every, self.ticks, self.errors = every, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from functions.scheduling import tick

        while not self._stop.wait(self.every):
            try:
                tick.tick(job_name=None, schedule_time=None)
                self.ticks += 1
            except Exception:
                self.errors += 1

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
