"""A schedule end to end: due now, one tick, and its run completes through the emulator and the batch
function; a second tick for the same minute fires nothing more."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared import config, outbox
from tests.e2e.conftest import Pipeline, skip_module_without_emulator, wait_until
from tests.servers import make_client

skip_module_without_emulator()


def test_a_due_schedule_runs_once_through_pubsub_and_the_batch_function(
    make_pipeline: Callable[..., Pipeline], api_key: str, admin_key: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline = make_pipeline()
    monkeypatch.setenv("PUBSUB_BATCH_TOPIC", pipeline.topic)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pipeline.emulator.host)
    config.get_settings.cache_clear()
    outbox.reset_publisher()
    scheduling = make_client("scheduling", key=api_key)
    run_at = datetime.now(UTC) + timedelta(seconds=2)
    created = scheduling.post("/v1/schedules", json={
        "requests": [{"kind": "image", "prompt": "first light"}, {"kind": "image", "prompt": "last light"}],
        "run_at": run_at.isoformat()})
    assert created.status_code == 201, created.get_json()
    schedule_id = created.get_json()["id"]
    time.sleep(max(0.0, (run_at - datetime.now(UTC)).total_seconds()) + 0.2)

    headers = {"Authorization": f"Bearer {admin_key}", "X-CloudScheduler-JobName": "projects/p/jobs/tick",
               "X-CloudScheduler-ScheduleTime": run_at.replace(second=0, microsecond=0).isoformat()}
    first = scheduling.post("/v1/schedules:tick", headers=headers).get_json()
    again = scheduling.post("/v1/schedules:tick", headers=headers).get_json()
    assert (first["fired"], first["published"]) == (1, 2)
    assert (again["fired"], again["duplicate_tick"]) == (0, True)

    schedule: dict[str, Any] = scheduling.get(f"/v1/schedules/{schedule_id}").get_json()
    assert schedule["state"] == "completed" and len(schedule["runs"]) == 1
    batch_id = schedule["runs"][0]["batch_id"]
    done = pipeline.wait_finished(batch_id, timeout=30)
    assert done["status"] == "succeeded" and done["counts"]["succeeded"] == 2
    assert done["schedule_id"] == schedule_id
    wait_until(lambda: pipeline.emulator.pull(pipeline.dead_letters) == [], timeout=2, what="no dead letters")
