"""End-to-end fixtures: the real gcloud Pub/Sub emulator (see tests/e2e/emulator.py for its quirks),
functions served by functions-framework, and a batch pipeline wiring them: generation publishes through
the outbox -> topic -> push subscription (with a dead-letter topic) -> batch function -> PostgreSQL.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.pubsub_emulator import (
    DEAD_LETTER_MAX_ATTEMPTS,
    PROJECT,
    Emulator,
    EmulatorUnavailable,
    missing_emulator,
    running_emulator,
)
from tests.e2e.served import Process
from tests.servers import free_port

__all__ = ["PROJECT", "Pipeline", "item_payload", "skip_module_without_emulator", "wait_until"]

REQUIRED = os.environ.get("REQUIRE_PUBSUB_EMULATOR") == "1"


def skip_module_without_emulator() -> None:
    """Call at the top of an e2e module: skip it whole (one line), or fail it when CI requires the emulator.

    Decided at collection from cheap checks, so a missing emulator costs one summary line, not one per test.
    """
    missing = missing_emulator()
    if missing is None:
        return
    if REQUIRED:
        pytest.fail(f"Pub/Sub emulator required (REQUIRE_PUBSUB_EMULATOR=1) but {missing}", pytrace=False)
    pytest.skip(f"e2e tests skipped: Pub/Sub emulator unavailable ({missing})", allow_module_level=True)


def wait_until(predicate: Callable[[], Any], *, timeout: float, interval: float = 0.1, what: str = "") -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The Pub/Sub emulator for the whole run; every e2e test skips (one line) when it is not installed."""
    try:
        with running_emulator(tmp_path_factory.mktemp("pubsub-emulator")) as emulator:
            yield emulator
    except EmulatorUnavailable as err:
        if REQUIRED:
            pytest.fail(f"Pub/Sub emulator required (REQUIRE_PUBSUB_EMULATOR=1) but {err}", pytrace=False)
        pytest.skip(f"e2e tests skipped: Pub/Sub emulator did not start ({err})")


@dataclass
class Pipeline:
    """topic -> push subscription (with dead-letter topic) -> batch function; generation publishes."""

    emulator: Emulator
    topic: str
    subscription: str
    dead_letters: str
    batch: Process
    generation: Process
    http: requests.Session = field(default_factory=requests.Session)

    def submit(self, items: list[dict[str, Any]], headers: dict[str, str] | None = None) -> dict[str, Any]:
        """POST /v1/batches; asserts 202 and returns the batch."""
        response = self.http.post(f"{self.generation.url}/v1/batches", json={"items": items},
                                  headers=headers or {}, timeout=60)
        assert response.status_code == 202, response.text
        batch: dict[str, Any] = response.json()
        return batch

    def get_batch(self, batch_id: str) -> dict[str, Any]:
        response = self.http.get(f"{self.generation.url}/v1/batches/{batch_id}", timeout=10)
        assert response.status_code == 200, response.text
        batch: dict[str, Any] = response.json()
        return batch

    def get_job(self, job_id: str) -> dict[str, Any]:
        response = self.http.get(f"{self.generation.url}/v1/generations/{job_id}", timeout=10)
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        return job

    def wait_finished(self, batch_id: str, timeout: float) -> dict[str, Any]:
        """Poll the batch until no item is queued or running; fail past `timeout`."""
        last: dict[str, Any] = {}

        def finished() -> dict[str, Any] | None:
            nonlocal last
            last = self.get_batch(batch_id)
            return last if last["status"] in ("succeeded", "partially_failed", "failed") else None

        try:
            result: dict[str, Any] = wait_until(finished, timeout=timeout, interval=0.2,
                                                what="batch to finish")
        except AssertionError:
            raise AssertionError(f"batch not finished after {timeout}s: {last}") from None
        return result

    def publish_item(self, payload: dict[str, Any] | bytes, *, copies: int = 1,
                     attributes: dict[str, str] | None = None) -> list[str]:
        """Publish item messages straight to the topic (as a duplicate or a stranger would)."""
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.emulator.publish(self.topic, data, attributes, copies=copies)

    def records_for(self, request_id: str) -> list[dict[str, Any]]:
        """The batch function's log lines written while handling message `request_id`.

        Metric facts are left out: a slow connection checkout, say, is Cloud Monitoring's to count.
        """
        return [r for r in self.batch.log_records() if r.get("request_id") == request_id and "metric" not in r]


def item_payload(batch_id: str, index: int, request: dict[str, Any]) -> dict[str, Any]:
    """The message data the outbox publishes for item `index` of a batch."""
    return {"batch_id": batch_id, "item_id": f"{batch_id}_{index:04d}", "request": request}


@pytest.fixture
def make_pipeline(pubsub_emulator: Emulator, db: Any, api_key: str, tmp_path: Path,
                  ) -> Iterator[Callable[..., Pipeline]]:
    """Build a pipeline with extra env for the batch function; everything is torn down after the test."""
    with ExitStack() as stack:

        def build(batch_env: dict[str, str] | None = None, *, dead_letter_max: int = DEAD_LETTER_MAX_ATTEMPTS,
                  generation_env: dict[str, str] | None = None) -> Pipeline:
            suffix = uuid.uuid4().hex[:10]
            topic = pubsub_emulator.create_topic(f"batch-{suffix}")
            dead_topic = pubsub_emulator.create_topic(f"batch-dead-{suffix}")
            dead_letters = pubsub_emulator.create_pull_subscription(f"batch-dead-{suffix}", dead_topic)
            common = {"DATABASE_URL": db.url, "GOOGLE_CLOUD_PROJECT": PROJECT, "GENERATION_BACKEND": "local",
                      "LOCAL_DATA_DIR": str(tmp_path / "media"), "PUBSUB_EMULATOR_HOST": pubsub_emulator.host,
                      "PUBSUB_BATCH_TOPIC": topic, "LOG_LEVEL": "INFO",
                      # tests poll GET /v1/batches fast and submit more than a minute's worth of items
                      "RATE_LIMIT_READ": "1000000", "RATE_LIMIT_BATCH_ITEMS": "1000000"}
            batch = Process("batch", free_port(), {**common, **(batch_env or {})}, tmp_path)
            generation = Process("generation", free_port(), {**common, **(generation_env or {})}, tmp_path)
            stack.callback(generation.stop)
            stack.callback(batch.stop)
            batch.start(), generation.start()
            batch.wait_ready(), generation.wait_ready()
            subscription = pubsub_emulator.create_push_subscription(
                f"batch-push-{suffix}", topic, batch.url + "/", dead_letter_topic=dead_topic,
                max_delivery_attempts=dead_letter_max)
            # LIFO: the subscription goes before the function it pushes to is stopped.
            stack.callback(pubsub_emulator.delete_subscription, subscription)
            stack.callback(pubsub_emulator.delete_subscription, dead_letters)
            pipeline = Pipeline(pubsub_emulator, topic, subscription, dead_letters, batch, generation)
            pipeline.http.headers["Authorization"] = f"Bearer {api_key}"
            return pipeline

        yield build
