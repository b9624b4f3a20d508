"""Images through the real google-genai client, over HTTP, against the Vertex AI and GCS stand-ins."""

from __future__ import annotations

import time

import pytest

from shared.config import Settings
from shared.exceptions import (
    ContentFilteredError,
    ImagenGenerationError,
    QuotaExceededError,
    UpstreamTimeoutError,
    VertexAIError,
)
from shared.media.backends import get_backend
from shared.media.request import GenerationRequest
from shared.media.vertex_backend import VertexBackend
from tests.standin import vertex_responses
from tests.standin.fixtures import OUTPUT_BUCKET, TEST_DEADLINE_SECONDS, TEST_PROJECT
from tests.standin.gcs_server import GcsStandIn
from tests.standin.vertex_server import VertexStandIn

IMAGEN = "imagen-4.0-generate-001"
MODEL_PATH = f"/v1/projects/{TEST_PROJECT}/locations/us-central1/publishers/google/models"


def imagen(prompt: str = "a lighthouse at dawn", **fields: object) -> GenerationRequest:
    return GenerationRequest.model_validate({"kind": "image", "prompt": prompt, "model": IMAGEN, **fields})


def test_imagen_writes_to_the_bucket_and_we_record_its_gcs_uris(
    backend: VertexBackend, vertex_standin: VertexStandIn, gcs_standin: GcsStandIn
) -> None:
    request = imagen(
        number_of_outputs=2, aspect_ratio="16:9", resolution="2K", person_generation="allow_adult", seed=7
    )
    outputs = backend.generate_image(request, job_id="job-img-1")

    assert [o.mime_type for o in outputs] == ["image/png", "image/png"]
    assert all(o.uri.startswith(f"gs://{OUTPUT_BUCKET}/images/job-img-1/") for o in outputs)
    assert gcs_standin.objects == {}, "Vertex wrote the files; nothing to upload"
    [call] = vertex_standin.calls()
    assert call.path == f"{MODEL_PATH}/{IMAGEN}:predict"
    assert call.headers["authorization"] == "Bearer standin-token"
    assert call.body["instances"][0]["prompt"] == "a lighthouse at dawn"
    assert call.body["parameters"] == {
        "storageUri": f"gs://{OUTPUT_BUCKET}/images/job-img-1/",
        "sampleCount": 2,
        "aspectRatio": "16:9",
        "sampleImageSize": "2K",
        "seed": 7,
        "addWatermark": False,
        "personGeneration": "ALLOW_ADULT",
        "includeRaiReason": True,
    }


def test_returned_image_bytes_are_uploaded_and_only_the_uri_is_kept(
    backend: VertexBackend, vertex_standin: VertexStandIn, gcs_standin: GcsStandIn
) -> None:
    vertex_standin.queue("success-bytes")
    [output] = backend.generate_image(imagen(), job_id="job-img-2")
    assert output.uri == f"gs://{OUTPUT_BUCKET}/images/job-img-2/0.png"
    stored = gcs_standin.get(output.uri)
    assert stored.data == vertex_responses.png_bytes() and stored.content_type == "image/png"


def test_gemini_image_bytes_are_uploaded_to_the_bucket(
    backend: VertexBackend, vertex_standin: VertexStandIn, gcs_standin: GcsStandIn
) -> None:
    request = GenerationRequest(
        kind="image",
        prompt="a koi pond",
        model="gemini-3-pro-image-preview",
        aspect_ratio="21:9",
        resolution="4K",
        person_generation="dont_allow",
        seed=3,
    )
    [output] = backend.generate_image(request, job_id="job-img-3")

    assert output.uri == f"gs://{OUTPUT_BUCKET}/images/job-img-3/0.png" and output.mime_type == "image/png"
    assert gcs_standin.get(output.uri).data == vertex_responses.png_bytes()
    [call] = vertex_standin.calls()
    assert call.path == f"{MODEL_PATH}/gemini-3-pro-image-preview:generateContent"
    assert call.body["contents"] == [{"role": "user", "parts": [{"text": "a koi pond"}]}]
    assert call.body["generationConfig"] == {
        "responseModalities": ["TEXT", "IMAGE"],
        "seed": 3,
        "imageConfig": {"aspectRatio": "21:9", "imageSize": "4K", "personGeneration": "ALLOW_NONE"},
    }


def test_the_default_image_model_is_used_through_get_backend(
    vertex_settings: Settings, vertex_standin: VertexStandIn, gcs_standin: GcsStandIn
) -> None:
    backend = get_backend(vertex_settings)
    [output] = backend.generate_image(GenerationRequest(kind="image", prompt="a fox"), job_id="job-img-4")
    assert output.uri.startswith(f"gs://{OUTPUT_BUCKET}/images/job-img-4/")
    assert vertex_standin.calls()[0].path == f"{MODEL_PATH}/gemini-2.5-flash-image:generateContent"
    assert get_backend(vertex_settings) is backend


def test_a_429_then_success_is_retried_and_succeeds(
    backend: VertexBackend, vertex_standin: VertexStandIn
) -> None:
    vertex_standin.queue("quota")
    outputs = backend.generate_image(imagen(), job_id="job-img-5")
    assert len(outputs) == 1
    assert len(vertex_standin.calls("predict")) == 2


def test_a_429_then_success_by_prompt_tag_also_works_end_to_end(
    backend: VertexBackend, vertex_standin: VertexStandIn
) -> None:
    backend.generate_image(imagen("a cat [standin:quota-then-success:2]"), job_id="job-img-6")
    assert len(vertex_standin.calls("predict")) == 3


def test_quota_that_never_recovers_is_quota_exceeded_inside_the_deadline(
    backend: VertexBackend, vertex_standin: VertexStandIn
) -> None:
    vertex_standin.queue("quota", times=100)
    vertex_standin.retry_after = 0.05
    started = time.monotonic()
    with pytest.raises(QuotaExceededError) as caught:
        backend.generate_image(imagen(), job_id="job-img-7")
    # Without the deadline, 100 refusals with backoff would take minutes; the margin absorbs a slow machine.
    assert time.monotonic() - started < TEST_DEADLINE_SECONDS + 5
    assert caught.value.http_status == 429 and caught.value.retry_after == 0.05
    assert len(vertex_standin.calls("predict")) >= 3


def test_an_outage_is_retried_then_a_503(backend: VertexBackend, vertex_standin: VertexStandIn) -> None:
    vertex_standin.queue("unavailable", times=100)
    with pytest.raises(VertexAIError) as caught:
        backend.generate_image(imagen(), job_id="job-img-8")
    assert type(caught.value) is VertexAIError
    assert (caught.value.http_status, caught.value.reason) == (503, "UPSTREAM_UNAVAILABLE")
    assert len(vertex_standin.calls("predict")) >= 3


def test_a_503_then_success_recovers(backend: VertexBackend, vertex_standin: VertexStandIn) -> None:
    vertex_standin.queue("unavailable", times=2)
    vertex_standin.queue("internal-error")
    assert len(backend.generate_image(imagen(), job_id="job-img-9")) == 1
    assert len(vertex_standin.calls("predict")) == 4


def test_a_rejected_prompt_fails_at_once_with_a_clean_message(
    backend: VertexBackend, vertex_standin: VertexStandIn
) -> None:
    with pytest.raises(ImagenGenerationError) as caught:
        backend.generate_image(imagen("[standin:rejected] something"), job_id="job-img-10")
    error = caught.value
    assert (error.reason, error.retryable) == ("IMAGE_GENERATION_REJECTED", False)
    assert "Responsible AI practices" in error.message
    assert "https://" not in error.message and "standin-token" not in str(error)
    assert len(vertex_standin.calls()) == 1


@pytest.mark.parametrize(
    ("model", "scenario"),
    [
        (IMAGEN, "rai-filtered"),
        ("gemini-2.5-flash-image", "rai-filtered"),
        ("gemini-2.5-flash-image", "prompt-blocked"),
    ],
)
def test_filtered_output_is_content_filtered(
    backend: VertexBackend, vertex_standin: VertexStandIn, model: str, scenario: str
) -> None:
    vertex_standin.queue(scenario)
    with pytest.raises(ContentFilteredError) as caught:
        backend.generate_image(GenerationRequest(kind="image", prompt="x", model=model), job_id="job-img-11")
    assert (caught.value.reason, caught.value.retryable) == ("CONTENT_FILTERED", False)


@pytest.mark.parametrize("model", [IMAGEN, "gemini-2.5-flash-image"])
def test_an_answer_without_any_image_has_its_own_reason(
    backend: VertexBackend, vertex_standin: VertexStandIn, model: str
) -> None:
    vertex_standin.queue("empty")
    with pytest.raises(ImagenGenerationError) as caught:
        backend.generate_image(GenerationRequest(kind="image", prompt="x", model=model), job_id="job-img-12")
    assert caught.value.reason == "IMAGE_EMPTY_RESULT"


def test_a_slow_upstream_times_out_at_the_deadline(
    backend: VertexBackend, vertex_standin: VertexStandIn
) -> None:
    vertex_standin.queue("slow", times=5)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeoutError) as caught:
        backend.generate_image(imagen(), job_id="job-img-13")
    elapsed = time.monotonic() - started
    # It waited out the deadline, then gave up instead of starting another slow call. Counting calls
    # rather than bounding the time from above keeps a loaded machine from failing the test.
    assert elapsed >= TEST_DEADLINE_SECONDS - 0.2
    assert len(vertex_standin.calls("predict")) == 1
    assert (caught.value.http_status, caught.value.reason) == (503, "UPSTREAM_TIMEOUT")


def test_a_failed_upload_is_a_retryable_storage_error(
    backend: VertexBackend, vertex_standin: VertexStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.media.storage import OutputStorageError

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")  # nothing listens there
    vertex_standin.queue("success-bytes")
    with pytest.raises(OutputStorageError) as caught:
        backend.generate_image(imagen(), job_id="job-img-14")
    assert caught.value.retryable and caught.value.reason == "OUTPUT_STORAGE_UNAVAILABLE"


def test_without_vertex_token_a_placeholder_is_sent_and_no_google_credentials_are_sought(
    vertex_env: dict[str, str], vertex_standin: VertexStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.media.upstream import RetryPolicy
    from shared.media.vertex_backend import PLACEHOLDER_TOKEN

    monkeypatch.delenv("VERTEX_TOKEN")
    backend = VertexBackend(Settings(), policy=RetryPolicy(max_attempts=1))
    assert len(backend.generate_image(imagen(), job_id="job-img-15")) == 1
    assert vertex_standin.calls()[0].headers["authorization"] == f"Bearer {PLACEHOLDER_TOKEN}"
