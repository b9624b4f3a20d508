"""Webhooks meet results: a cancel sends generation.cancelled, and batch.completed carries the results file."""

from __future__ import annotations

from typing import Any

import pytest
from standardwebhooks import Webhook

from shared import config
from shared.webhooks import dispatch
from tests.integration.webhooks.conftest import push
from tests.integration.webhooks.test_deliveries import IMAGE, secret
from tests.standin.webhook_receiver import WebhookReceiver

VIDEO = {"kind": "video", "prompt": "waves at dusk", "duration_seconds": 4}


def test_cancelling_a_running_video_sends_generation_cancelled(
    client: Any, receiver: tuple[WebhookReceiver, str],
) -> None:
    app, url = receiver
    job = client.post("/v1/generations", json={**VIDEO, "webhook_url": url}).get_json()
    assert job["status"] == "running"
    cancelled = client.post(f"/v1/generations/{job['id']}:cancel")
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    (got,) = app.wait_for(1)
    event = Webhook(secret(client)).verify(got.request.body, got.request.headers)
    assert event["type"] == "generation.cancelled" and event["data"]["id"] == job["id"]
    assert event["data"]["status"] == "cancelled"


def test_batch_completed_carries_the_results_file(
    client: Any, batch_fn: Any, receiver: tuple[WebhookReceiver, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Sent from a background thread, outside any request: links are minted on the configured base URL.
    monkeypatch.setenv("DOWNLOAD_BASE_URL", "https://genmedia.example.com")
    config.get_settings.cache_clear()
    app, url = receiver
    items = [{**IMAGE, "prompt": f"prompt {i}", "custom_id": f"row-{i}"} for i in range(2)]
    batch = client.post("/v1/batches", json={"items": items, "webhook_url": url}).get_json()
    for index in range(2):
        assert push(batch_fn, batch["id"], index, items[index]).status_code == 200
    (got,) = app.wait_for(1)
    dispatch.wait_idle()
    event = Webhook(secret(client)).verify(got.request.body, got.request.headers)
    assert event["type"] == "batch.completed"
    results = event["data"]["results"]
    assert results["uri"].endswith(f"results/{batch['id']}.jsonl")
    assert results["url"].startswith("https://genmedia.example.com/v1/files/")


def test_cancelling_a_batch_sends_one_batch_completed(
    client: Any, receiver: tuple[WebhookReceiver, str],
) -> None:
    app, url = receiver
    batch = client.post("/v1/batches", json={"items": [IMAGE, IMAGE], "webhook_url": url}).get_json()
    assert client.post(f"/v1/batches/{batch['id']}:cancel").get_json()["status"] == "cancelled"
    (got,) = app.wait_for(1)
    dispatch.wait_idle()
    event = Webhook(secret(client)).verify(got.request.body, got.request.headers)
    assert event["type"] == "batch.completed" and event["data"]["counts"]["cancelled"] == 2
    assert len(app.received) == 1
