"""Veo's long-running lifecycle through the real google-genai client against the stand-ins."""

from __future__ import annotations

import time

import pytest

from shared.exceptions import (
    ContentFilteredError,
    QuotaExceededError,
    UpstreamTimeoutError,
    VeoGenerationError,
    VertexAIError,
)
from shared.media.request import GenerationRequest
from shared.media.vertex_backend import VertexBackend
from tests.standin import vertex_responses
from tests.standin.fixtures import OUTPUT_BUCKET, TEST_DEADLINE_SECONDS, TEST_PROJECT
from tests.standin.gcs_server import GcsStandIn
from tests.standin.vertex_server import VertexStandIn

VEO = "veo-3.0-generate-001"
MODEL_PATH = f"/v1/projects/{TEST_PROJECT}/locations/us-central1/publishers/google/models"


def video(prompt: str = "waves at night", **fields: object) -> GenerationRequest:
    return GenerationRequest.model_validate({"kind": "video", "prompt": prompt, "model": VEO, **fields})


def test_start_sends_the_veo_parameters_and_returns_the_operation_name(
    backend: VertexBackend, vertex_standin: VertexStandIn
) -> None:
    request = video(
        negative_prompt="blur",
        number_of_outputs=2,
        duration_seconds=6,
        aspect_ratio="9:16",
        resolution="1080p",
        seed=11,
        person_generation="dont_allow",
        generate_audio=False,
    )
    name = backend.start_video(request, job_id="job-vid-1")

    assert name.startswith(
        f"projects/{TEST_PROJECT}/locations/us-central1/publishers/google/models/{VEO}/operations/"
    )
    [call] = vertex_standin.calls()
    assert call.path == f"{MODEL_PATH}/{VEO}:predictLongRunning"
    assert call.body["instances"] == [{"prompt": "waves at night"}]
    assert call.body["parameters"] == {
        "sampleCount": 2,
        "storageUri": f"gs://{OUTPUT_BUCKET}/videos/job-vid-1/",
        "durationSeconds": 6,
        "seed": 11,
        "aspectRatio": "9:16",
        "resolution": "1080p",
        "personGeneration": "dont_allow",
        "negativePrompt": "blur",
        "generateAudio": False,
    }


def test_required_veo_parameters_get_their_defaults(
    backend: VertexBackend, vertex_standin: VertexStandIn
) -> None:
    backend.start_video(GenerationRequest(kind="video", prompt="rain"), job_id="job-vid-2")
    params = vertex_standin.calls()[0].body["parameters"]
    assert params["durationSeconds"] == 8 and params["generateAudio"] is True and params["sampleCount"] == 1
    assert vertex_standin.calls()[0].path == f"{MODEL_PATH}/veo-3.0-fast-generate-001:predictLongRunning"


def test_an_operation_is_polled_once_per_call_until_done(
    backend: VertexBackend, vertex_standin: VertexStandIn, gcs_standin: GcsStandIn
) -> None:
    name = backend.start_video(video("a storm [standin:not-done-then-done]"), job_id="job-vid-3")
    assert backend.poll_video(name, model=VEO, job_id="job-vid-3") is None
    outputs = backend.poll_video(name, model=VEO, job_id="job-vid-3")

    assert outputs is not None and [o.mime_type for o in outputs] == ["video/mp4"]
    assert outputs[0].uri.startswith(f"gs://{OUTPUT_BUCKET}/videos/job-vid-3/")
    polls = vertex_standin.calls("fetchPredictOperation")
    assert len(polls) == 2, "one HTTP call per poll_video, never a wait loop"
    assert polls[0].path == f"{MODEL_PATH}/{VEO}:fetchPredictOperation"
    assert polls[0].body == {"operationName": name}
    assert gcs_standin.objects == {}


def test_video_bytes_are_uploaded_when_vertex_returns_them(
    backend: VertexBackend, vertex_standin: VertexStandIn, gcs_standin: GcsStandIn
) -> None:
    name = backend.start_video(video("[standin:video-bytes]"), job_id="job-vid-4")
    [output] = backend.poll_video(name, model=VEO, job_id="job-vid-4") or []
    assert output.uri == f"gs://{OUTPUT_BUCKET}/videos/job-vid-4/0.mp4"
    assert gcs_standin.get(output.uri).data == vertex_responses.mp4_bytes()


@pytest.mark.parametrize(
    ("scenario", "error", "reason"),
    [
        ("operation-error", VeoGenerationError, "VIDEO_GENERATION_FAILED"),
        ("operation-quota", VeoGenerationError, "UPSTREAM_QUOTA_EXCEEDED"),
        ("empty", VeoGenerationError, "VIDEO_EMPTY_RESULT"),
        ("rai-filtered", ContentFilteredError, "CONTENT_FILTERED"),
    ],
)
def test_an_operation_that_ends_without_video_fails_for_good(
    backend: VertexBackend, vertex_standin: VertexStandIn, scenario: str, error: type[Exception], reason: str
) -> None:
    name = backend.start_video(video(f"[standin:{scenario}]"), job_id="job-vid-5")
    with pytest.raises(error) as caught:
        backend.poll_video(name, model=VEO, job_id="job-vid-5")
    assert caught.value.reason == reason  # type: ignore[attr-defined]
    assert caught.value.retryable is False, "terminal: the job fails instead of polling again"  # type: ignore


def test_an_operation_error_keeps_the_upstream_message_for_the_job(
    backend: VertexBackend, vertex_standin: VertexStandIn
) -> None:
    name = backend.start_video(video("[standin:operation-error]"), job_id="job-vid-6")
    with pytest.raises(VeoGenerationError) as caught:
        backend.poll_video(name, model=VEO, job_id="job-vid-6")
    assert caught.value.to_record() == {
        "reason": "VIDEO_GENERATION_FAILED",
        "message": "the video model could not generate the video: The video could not be generated. "
        "Support codes: 15236754",
    }


def test_a_failing_poll_is_retryable_so_the_job_keeps_its_operation(
    backend: VertexBackend, vertex_standin: VertexStandIn
) -> None:
    name = backend.start_video(video(), job_id="job-vid-7")
    vertex_standin.queue("unavailable", times=100, method="fetchPredictOperation")
    with pytest.raises(VertexAIError) as caught:
        backend.poll_video(name, model=VEO, job_id="job-vid-7")
    assert caught.value.retryable
    vertex_standin.reset_queue()
    assert backend.poll_video(name, model=VEO, job_id="job-vid-7") is not None


def test_an_unknown_operation_fails_for_good(backend: VertexBackend, vertex_standin: VertexStandIn) -> None:
    name = f"projects/{TEST_PROJECT}/locations/us-central1/publishers/google/models/{VEO}/operations/nope"
    with pytest.raises(VeoGenerationError) as caught:
        backend.poll_video(name, model=VEO, job_id="job-vid-8")
    assert not caught.value.retryable


def test_quota_on_start_is_quota_exceeded(backend: VertexBackend, vertex_standin: VertexStandIn) -> None:
    vertex_standin.queue("quota", times=100)
    with pytest.raises(QuotaExceededError):
        backend.start_video(video(), job_id="job-vid-9")


def test_a_start_that_times_out_is_not_sent_twice(
    backend: VertexBackend, vertex_standin: VertexStandIn
) -> None:
    vertex_standin.queue("slow", times=5)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeoutError):
        backend.start_video(video(), job_id="job-vid-10")
    assert time.monotonic() - started >= TEST_DEADLINE_SECONDS - 0.2
    assert len(vertex_standin.calls("predictLongRunning")) == 1, "a second call could start a second video"


def test_a_rejected_video_prompt_is_a_veo_generation_error(
    backend: VertexBackend, vertex_standin: VertexStandIn
) -> None:
    with pytest.raises(VeoGenerationError) as caught:
        backend.start_video(video("[standin:rejected]"), job_id="job-vid-11")
    assert caught.value.reason == "VIDEO_GENERATION_FAILED" and not caught.value.retryable
