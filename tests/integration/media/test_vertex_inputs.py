"""Input pictures through the real google-genai client: what reaches the Vertex stand-in is
`{gcsUri, mimeType}` for Veo and `fileData` parts for Gemini, and never the bytes."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from shared.media.request import GenerationRequest
from shared.media.vertex_backend import VertexBackend
from tests.standin.fixtures import OUTPUT_BUCKET, TEST_PROJECT
from tests.standin.vertex_server import VertexStandIn
from tests.standin.vertex_shapes import camel

MODEL_PATH = f"/v1/projects/{TEST_PROJECT}/locations/us-central1/publishers/google/models"
CAT = {"uri": f"gs://{OUTPUT_BUCKET}/uploads/upl_cat", "mime_type": "image/png"}
END = {"uri": f"gs://{OUTPUT_BUCKET}/images/gen_end/0.png", "mime_type": "image/png"}
HAT = {"uri": f"gs://{OUTPUT_BUCKET}/uploads/upl_hat", "mime_type": "image/jpeg"}


def req(**fields: Any) -> GenerationRequest:
    return GenerationRequest.model_validate({"prompt": "the cat walks away", **fields})


def test_image_to_video_sends_the_first_frame_as_a_gcs_uri(backend: VertexBackend,
                                                          vertex_standin: VertexStandIn) -> None:
    backend.start_video(req(kind="video", model="veo-3.0-fast-generate-001", image=CAT), job_id="gen_v1")
    [call] = vertex_standin.calls("predictLongRunning")
    assert call.body["instances"] == [{
        "prompt": "the cat walks away",
        "image": {"gcsUri": f"gs://{OUTPUT_BUCKET}/uploads/upl_cat", "mimeType": "image/png"},
    }]


def test_first_and_last_frames_are_both_sent_from_the_bucket(backend: VertexBackend,
                                                            vertex_standin: VertexStandIn) -> None:
    backend.start_video(req(kind="video", model="veo-3.1-generate-preview", image=CAT, last_frame=END),
                        job_id="gen_v2")
    [call] = vertex_standin.calls("predictLongRunning")
    [instance] = call.body["instances"]
    assert instance["image"] == {"gcsUri": CAT["uri"], "mimeType": "image/png"}
    assert instance["lastFrame"] == {"gcsUri": END["uri"], "mimeType": "image/png"}
    assert "lastFrame" not in call.body["parameters"]


def test_reference_images_carry_their_type(backend: VertexBackend, vertex_standin: VertexStandIn) -> None:
    references = [{"image": CAT, "type": "asset"}, {"image": HAT, "type": "asset"}]
    backend.start_video(req(kind="video", model="veo-3.1-fast-generate-preview", reference_images=references),
                        job_id="gen_v3")
    [call] = vertex_standin.calls("predictLongRunning")
    [instance] = call.body["instances"]
    assert instance["referenceImages"] == [
        {"image": {"gcsUri": CAT["uri"], "mimeType": "image/png"}, "referenceType": "ASSET"},
        {"image": {"gcsUri": HAT["uri"], "mimeType": "image/jpeg"}, "referenceType": "ASSET"},
    ]
    assert "image" not in instance and call.body["parameters"]["durationSeconds"] == 8


def test_gemini_edits_and_composes_from_file_data_parts(backend: VertexBackend,
                                                        vertex_standin: VertexStandIn) -> None:
    [output] = backend.generate_image(
        req(kind="image", model="gemini-3-pro-image-preview", image=CAT, input_images=[HAT, END]),
        job_id="gen_i1")
    assert output.uri == f"gs://{OUTPUT_BUCKET}/images/gen_i1/0.png"
    [call] = vertex_standin.calls("generateContent")
    # proto3 JSON: google-genai sends `fileData: {file_uri, mime_type}`; Vertex reads either spelling.
    assert camel(call.body["contents"]) == [{"role": "user", "parts": [
        {"fileData": {"fileUri": CAT["uri"], "mimeType": "image/png"}},
        {"fileData": {"fileUri": HAT["uri"], "mimeType": "image/jpeg"}},
        {"fileData": {"fileUri": END["uri"], "mimeType": "image/png"}},
        {"text": "the cat walks away"},
    ]}]


def test_the_request_body_stays_small_with_gcs_inputs(backend: VertexBackend,
                                                      vertex_standin: VertexStandIn) -> None:
    backend.start_video(req(kind="video", model="veo-3.1-generate-preview", image=CAT, last_frame=END),
                        job_id="gen_v4")
    [call] = vertex_standin.calls("predictLongRunning")
    assert len(json.dumps(call.body)) < 2048
    assert "bytesBase64Encoded" not in json.dumps(call.body)


def test_an_unresolved_reference_never_reaches_vertex(backend: VertexBackend,
                                                      vertex_standin: VertexStandIn) -> None:
    with pytest.raises(ValueError, match="resolve input references"):
        backend.start_video(req(kind="video", model="veo-3.0-generate-001", image={"upload_id": "upl_x"}),
                            job_id="gen_v5")
    assert vertex_standin.calls() == []


@pytest.mark.parametrize(("model", "instance_or_body", "message"), [
    ("veo-3.0-generate-001:predictLongRunning",
     {"instances": [{"prompt": "p", "image": {"gcsUri": "gs://b/o"}}]}, "mimeType"),
    ("veo-3.0-generate-001:predictLongRunning",
     {"instances": [{"prompt": "p", "image": {"gcsUri": "https://x/o", "mimeType": "image/png"}}]}, "gs://"),
    ("veo-3.0-generate-001:predictLongRunning",
     {"instances": [{"prompt": "p", "lastFrame": {"gcsUri": "gs://b/o", "mimeType": "image/png"}}]},
     "requires"),
    ("veo-3.1-generate-preview:predictLongRunning",
     {"instances": [{"prompt": "p", "image": {"gcsUri": "gs://b/o", "mimeType": "image/png"},
                     "referenceImages": [{"image": {"gcsUri": "gs://b/o", "mimeType": "image/png"},
                                          "referenceType": "ASSET"}]}]}, "cannot be combined"),
    ("gemini-2.5-flash-image:generateContent",
     {"contents": [{"role": "user", "parts": [{"fileData": {"fileUri": "gs://b/o"}}]}]}, "fileData"),
])
def test_the_standin_refuses_pictures_vertex_would_refuse(vertex_standin: VertexStandIn, model: str,
                                                          instance_or_body: dict[str, Any], message: str) -> None:
    response = requests.post(f"{vertex_standin.url}{MODEL_PATH}/{model}", json=instance_or_body,
                             headers={"Authorization": "Bearer t"}, timeout=5)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
