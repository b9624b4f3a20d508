"""Fixtures for webhook tests: a real receiver, and the functions served in this process."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared import config
from tests.servers import make_client
from tests.standin.webhook_receiver import WebhookReceiver, running_receiver

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiver, str]]:
    """A webhook receiver on 127.0.0.1 and its URL."""
    with running_receiver() as found:
        yield found


@pytest.fixture
def env(db: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Local backend, and a batch topic nobody serves (rows stay in the Pub/Sub outbox)."""
    monkeypatch.setenv("GENERATION_BACKEND", "local")
    monkeypatch.setenv("LOCAL_DATA_DIR", str(tmp_path / "media"))
    monkeypatch.setenv("LOCAL_VIDEO_DELAY_SECONDS", "0.2")
    monkeypatch.setenv("VIDEO_POLL_INTERVAL_SECONDS", "0")
    monkeypatch.setenv("PUBSUB_BATCH_TOPIC", "projects/genmedia-test/topics/batches")
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")
    monkeypatch.setenv("PUBSUB_PUBLISH_TIMEOUT_SECONDS", "0.5")
    config.get_settings.cache_clear()


@pytest.fixture
def client(env: None, api_key: str) -> Any:
    """The generation function (its import enables the dispatcher), with an API key."""
    return make_client("generation", key=api_key)


@pytest.fixture
def batch_fn(env: None) -> Any:
    """The batch function."""
    return make_client("batch")


def push(batch_fn: Any, batch_id: str, index: int, request: dict[str, Any]) -> Any:
    """Deliver one batch item to the batch function as Pub/Sub push would."""
    body = json.loads((EVENTS / "pubsub_push.json").read_text())
    data = {"batch_id": batch_id, "item_id": f"{batch_id}_{index:04d}", "request": request}
    body["message"].update(messageId=f"m{index}", message_id=f"m{index}",
                           data=base64.b64encode(json.dumps(data).encode()).decode())
    return batch_fn.post("/", json=body)
