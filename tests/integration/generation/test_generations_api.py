"""`POST/GET /v1/generations` end to end in one process: real PostgreSQL, the real google-genai
client over HTTP to the Vertex stand-in, and the local backend's real files."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from shared import config
from tests.servers import make_client


@pytest.fixture
def local_client(db: Any, api_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("GENERATION_BACKEND", "local")
    monkeypatch.setenv("LOCAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LOCAL_VIDEO_DELAY_SECONDS", "0.3")
    monkeypatch.setenv("VIDEO_POLL_INTERVAL_SECONDS", "0")
    config.get_settings.cache_clear()
    return make_client("generation", key=api_key)


@pytest.fixture
def vertex_client(db: Any, api_key: str, vertex_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("VIDEO_POLL_INTERVAL_SECONDS", "0")
    config.get_settings.cache_clear()
    return make_client("generation", key=api_key)


def generate(client: Any, body: dict[str, Any], key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/v1/generations", json=body, headers=headers)


def reason(response: Any) -> str:
    return str(response.get_json()["error"]["details"][0]["reason"])


def poll_until_final(client: Any, job_id: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/generations/{job_id}").get_json()
        if job["status"] in ("succeeded", "failed"):
            return dict(job)
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still running after {timeout}s")


def test_local_image_is_a_real_png_and_the_job_is_recorded(local_client: Any) -> None:
    response = generate(local_client, {"kind": "image", "prompt": "a red fox in snow"})
    assert response.status_code == 201
    job = response.get_json()
    assert job["status"] == "succeeded" and job["error"] is None and job["kind"] == "image"
    (output,) = job["outputs"]
    assert output["mime_type"] == "image/png"
    assert Path(output["uri"].removeprefix("file://")).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert local_client.get(f"/v1/generations/{job['id']}").get_json() == job


def test_local_video_is_asynchronous_and_ends_as_an_mp4(local_client: Any) -> None:
    response = generate(local_client, {"kind": "video", "prompt": "waves", "duration_seconds": 4})
    assert response.status_code == 202
    assert response.get_json()["status"] == "running"
    job = poll_until_final(local_client, response.get_json()["id"])
    assert job["status"] == "succeeded"
    (output,) = job["outputs"]
    assert output["mime_type"] == "video/mp4"
    assert Path(output["uri"].removeprefix("file://")).read_bytes()[4:8] == b"ftyp"


def test_imagen_request_is_sent_in_vertex_wire_format_and_writes_to_the_bucket(vertex_client: Any,
                                                                               vertex_standin: Any) -> None:
    response = generate(vertex_client, {"kind": "image", "prompt": "a lighthouse", "model": "imagen-4.0-generate-001",
                                        "aspect_ratio": "16:9", "number_of_outputs": 2})
    assert response.status_code == 201, response.get_json()
    job = response.get_json()
    assert job["status"] == "succeeded" and len(job["outputs"]) == 2
    assert all(o["uri"].startswith("gs://") for o in job["outputs"])
    (call,) = vertex_standin.calls("predict")
    assert call.path.endswith("/models/imagen-4.0-generate-001:predict") and call.path.startswith("/v1/")
    assert call.body["instances"][0]["prompt"] == "a lighthouse"
    assert call.body["parameters"]["sampleCount"] == 2 and call.body["parameters"]["aspectRatio"] == "16:9"
    assert call.body["parameters"]["storageUri"].startswith("gs://")


def test_gemini_image_bytes_are_uploaded_never_stored_in_the_job(vertex_client: Any, gcs_standin: Any) -> None:
    response = generate(vertex_client, {"kind": "image", "prompt": "a cat", "model": "gemini-2.5-flash-image"})
    job = response.get_json()
    assert response.status_code == 201 and job["status"] == "succeeded", job
    (output,) = job["outputs"]
    stored = gcs_standin.get(output["uri"])
    assert stored.data[:4] == b"\x89PNG" and stored.content_type == "image/png"
    assert len(json.dumps(job)) < 2000


def test_quota_then_success_is_retried_inside_the_request(vertex_client: Any, vertex_standin: Any) -> None:
    vertex_standin.queue("quota", times=1, method="predict")
    response = generate(vertex_client, {"kind": "image", "prompt": "x", "model": "imagen-4.0-generate-001"})
    assert response.status_code == 201 and response.get_json()["status"] == "succeeded"
    assert len(vertex_standin.calls("predict")) == 2


def test_quota_always_is_429_with_retry_after_and_the_key_can_be_retried(vertex_client: Any,
                                                                         vertex_standin: Any) -> None:
    vertex_standin.queue("quota", times=100, method="predict")
    body = {"kind": "image", "prompt": "x", "model": "imagen-4.0-generate-001"}
    response = generate(vertex_client, body, key="retry-me-1")
    assert response.status_code == 429 and reason(response) == "UPSTREAM_QUOTA_EXCEEDED"
    assert int(response.headers["Retry-After"]) >= 1
    vertex_standin.reset()
    again = generate(vertex_client, body, key="retry-me-1")
    assert again.status_code == 201 and again.get_json()["status"] == "succeeded"


def test_an_outage_is_503_never_500(vertex_client: Any, vertex_standin: Any) -> None:
    vertex_standin.queue("unavailable", times=100, method="predict")
    response = generate(vertex_client, {"kind": "image", "prompt": "x", "model": "imagen-4.0-generate-001"})
    assert response.status_code == 503 and reason(response) == "UPSTREAM_UNAVAILABLE"
    assert "Retry-After" in response.headers


def test_a_slow_upstream_past_the_deadline_is_503(vertex_client: Any, vertex_standin: Any) -> None:
    vertex_standin.queue("slow", times=100, method="predict")
    started = time.monotonic()
    response = generate(vertex_client, {"kind": "image", "prompt": "x", "model": "imagen-4.0-generate-001"})
    assert response.status_code == 503 and reason(response) == "UPSTREAM_TIMEOUT"
    # Given up at the deadline, not after waiting out every slow attempt.
    assert time.monotonic() - started < 30
    assert len(vertex_standin.calls("predict")) == 1


@pytest.mark.parametrize(
    ("tag", "expected_reason"),
    [("rejected", "IMAGE_GENERATION_REJECTED"), ("rai-filtered", "CONTENT_FILTERED"),
     ("empty", "IMAGE_EMPTY_RESULT")],
)
def test_model_refusals_end_the_job_failed_with_a_reason(vertex_client: Any, tag: str,
                                                         expected_reason: str) -> None:
    response = generate(vertex_client, {"kind": "image", "prompt": f"x [standin:{tag}]",
                                        "model": "imagen-4.0-generate-001"})
    assert response.status_code == 201
    job = response.get_json()
    assert job["status"] == "failed" and job["error"]["reason"] == expected_reason and job["outputs"] == []


def test_veo_operation_not_done_then_done(vertex_client: Any, vertex_standin: Any) -> None:
    response = generate(vertex_client, {"kind": "video", "prompt": "surf [standin:not-done-then-done]",
                                        "model": "veo-3.0-fast-generate-001"})
    assert response.status_code == 202
    job_id = response.get_json()["id"]
    first = vertex_client.get(f"/v1/generations/{job_id}").get_json()
    assert first["status"] == "running"
    final = poll_until_final(vertex_client, job_id)
    assert final["status"] == "succeeded" and final["outputs"][0]["mime_type"] == "video/mp4"
    (start,) = vertex_standin.calls("predictLongRunning")
    assert start.body["parameters"]["durationSeconds"] == 8
    assert start.body["parameters"]["storageUri"].startswith("gs://")


@pytest.mark.parametrize(("tag", "expected_reason"),
                         [("operation-error", "VIDEO_GENERATION_FAILED"), ("empty", "VIDEO_EMPTY_RESULT")])
def test_veo_operations_that_end_badly_fail_the_job(vertex_client: Any, tag: str, expected_reason: str) -> None:
    response = generate(vertex_client, {"kind": "video", "prompt": f"x [standin:{tag}]",
                                        "model": "veo-3.0-fast-generate-001"})
    job = poll_until_final(vertex_client, response.get_json()["id"])
    assert job["status"] == "failed" and job["error"]["reason"] == expected_reason


def test_a_field_the_model_does_not_support_is_400_naming_it(vertex_client: Any) -> None:
    response = generate(vertex_client, {"kind": "video", "prompt": "x", "model": "veo-3.0-fast-generate-001",
                                        "duration_seconds": 31})
    assert response.status_code == 400
    violations = response.get_json()["error"]["details"][1]["fieldViolations"]
    assert violations[0]["field"] == "duration_seconds"


@pytest.mark.parametrize("body", [
    {"kind": "image", "prompt": "x", "model": "imagen-9.9-nope"},
    {"kind": "video", "prompt": "x", "model": "imagen-4.0-generate-001"},
    {"kind": "image", "prompt": "   "},
    {"kind": "sound", "prompt": "x"},
    {"prompt": "x"},
])
def test_bad_requests_are_400_and_create_nothing(local_client: Any, body: dict[str, Any]) -> None:
    response = generate(local_client, body)
    assert response.status_code == 400 and reason(response) == "VALIDATION_FAILED"


def test_same_idempotency_key_and_body_return_the_same_job(local_client: Any) -> None:
    body = {"kind": "image", "prompt": "same"}
    first = generate(local_client, body, key="k-123")
    second = generate(local_client, body, key="k-123")
    assert first.status_code == 201 and second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.get_json()["id"] == second.get_json()["id"]


def test_same_idempotency_key_with_another_body_is_409(local_client: Any) -> None:
    generate(local_client, {"kind": "image", "prompt": "one"}, key="k-456")
    response = generate(local_client, {"kind": "image", "prompt": "two"}, key="k-456")
    assert response.status_code == 409 and reason(response) == "IDEMPOTENCY_KEY_REUSED"


def test_concurrent_requests_with_one_key_start_exactly_one_generation(vertex_client: Any,
                                                                        vertex_standin: Any) -> None:
    body = {"kind": "image", "prompt": "once", "model": "imagen-4.0-generate-001"}
    barrier = threading.Barrier(8)
    ids: list[str] = []

    def send() -> None:
        client = vertex_client.application.test_client()
        client.environ_base.update(vertex_client.environ_base)
        barrier.wait()
        response = generate(client, body, key="k-concurrent")
        assert response.status_code in (200, 201), response.get_json()
        ids.append(response.get_json()["id"])

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 8 and len(set(ids)) == 1
    assert len(vertex_standin.calls("predict")) == 1


def test_unknown_generation_is_404(local_client: Any) -> None:
    response = local_client.get("/v1/generations/gen_doesnotexist")
    assert response.status_code == 404 and reason(response) == "NOT_FOUND"
