"""A single generation whose function is SIGKILLed inside its Vertex AI call ends, and can be retried.

Real processes: the generation function served by functions-framework against the Vertex stand-in
(which answers the first call after 8 s), killed whole 0-2 s into that call, restarted on the same
port; the scheduling function ticking once a second. Before leases covered single generations the
job stayed `running` forever and a polling client waited forever.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from tests.e2e.conftest import wait_until
from tests.e2e.served import Process
from tests.servers import free_port
from tests.standin.fixtures import OUTPUT_BUCKET, TEST_PROJECT
from tests.standin.gcs_server import GcsStandIn
from tests.standin.vertex_server import VertexStandIn

SLOW_SECONDS = 8.0
# Long enough that the kill always lands inside the call, short enough that the lease ends soon.
DEADLINE_SECONDS = 6.0


@pytest.fixture
def served(db: Any, vertex_standin: VertexStandIn, gcs_standin: GcsStandIn, tmp_path: Path) -> Any:
    env = {
        "DATABASE_URL": db.url, "GOOGLE_CLOUD_PROJECT": TEST_PROJECT, "GENERATION_BACKEND": "vertex",
        "VERTEX_BASE_URL": vertex_standin.url, "VERTEX_TOKEN": "standin-token", "OUTPUT_BUCKET": OUTPUT_BUCKET,
        "STORAGE_EMULATOR_HOST": gcs_standin.url, "VERTEX_DEADLINE_SECONDS": str(DEADLINE_SECONDS),
        "ITEM_LEASE_MARGIN_SECONDS": "1", "GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/credentials.json",
        # The tick needs a topic; nothing is published in this test, so no emulator is needed.
        "PUBSUB_BATCH_TOPIC": "batches", "PUBSUB_EMULATOR_HOST": "127.0.0.1:9",
    }
    generation = Process("generation", free_port(), env, tmp_path).start()
    scheduling = Process("scheduling", free_port(), env, tmp_path).start()
    try:
        generation.wait_ready(), scheduling.wait_ready()
        yield generation, scheduling
    finally:
        generation.stop(), scheduling.stop()


def test_a_generation_killed_mid_vertex_call_ends_interrupted_and_its_key_runs_again(
        served: tuple[Process, Process], vertex_standin: VertexStandIn, api_key: str, admin_key: str,
        db: Any) -> None:
    generation, scheduling = served
    vertex_standin.slow_seconds = SLOW_SECONDS
    vertex_standin.queue("slow", times=1)  # only the first call hangs: the retry answers at once
    headers = {"Authorization": f"Bearer {api_key}", "Idempotency-Key": f"fox-{uuid.uuid4().hex[:8]}"}
    body = {"kind": "image", "prompt": "a red fox in fresh snow"}
    url = f"{generation.url}/v1/generations"

    def post() -> None:
        try:
            requests.post(url, json=body, headers=headers, timeout=30)
        except requests.ConnectionError:
            pass  # the function dies under it

    client = threading.Thread(target=post, daemon=True)
    client.start()
    wait_until(lambda: vertex_standin.calls(), timeout=30, interval=0.02, what="the Vertex call to start")
    generation.kill()  # SIGKILL of the whole process group, inside the call
    client.join(timeout=30)
    engine = sa.create_engine(db.url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        (job_id, status) = conn.execute(sa.text("SELECT id, status FROM jobs")).one()
    engine.dispose()
    assert status == "running"
    generation.start().wait_ready()

    ticks = 0

    def ended() -> dict[str, Any] | None:
        nonlocal ticks
        ticks += 1
        tick = requests.post(f"{scheduling.url}/v1/schedules:tick",
                             headers={"Authorization": f"Bearer {admin_key}"}, timeout=30)
        assert tick.status_code == 200, tick.text
        job: dict[str, Any] = requests.get(f"{url}/{job_id}", headers=headers, timeout=10).json()
        return job if job["status"] != "running" else None

    job = wait_until(ended, timeout=120, interval=1.0, what="the interrupted job to end")
    assert job["status"] == "failed"
    assert job["error"]["reason"] == "INTERRUPTED"
    print(f"interrupted job ended after {ticks} ticks")

    retried = requests.post(url, json=body, headers=headers, timeout=30)
    assert retried.status_code == 201, retried.text  # the key was released: it runs again
    assert retried.json()["id"] != job_id
    assert retried.json()["status"] == "succeeded"
