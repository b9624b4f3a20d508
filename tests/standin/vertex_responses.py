"""Vertex AI response bodies, shaped as the real API answers (and as google-genai parses them).

Shapes follow the Vertex REST reference and the SDK's converters (google/genai/models.py:
_GenerateImagesResponse_from_vertex, _GenerateVideosOperation_from_vertex; generateContent is
parsed as is).
"""

from __future__ import annotations

import base64
import functools
import uuid
from typing import Any

from shared.media import local_media, png
from tests.standin.http_base import Reply

VIDEO_RESPONSE_TYPE = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
REJECTED_MESSAGE = (
    "Image generation failed with the following error: The prompt could not be submitted. This prompt "
    "contains sensitive words that violate Google's Responsible AI practices. Try rephrasing the prompt. "
    "If you think this was an error, send feedback. Support codes: 42876398 "
    "(see https://cloud.google.com/vertex-ai/generative-ai/docs/image/responsible-ai-imagen)"
)
RAI_REASON = (
    "39322892: Your current safety filter threshold filtered out the generated image. "
    "Support codes: 39322892"
)
VIDEO_RAI_REASON = (
    "Unable to generate videos because of a safety filter on people. Support codes: 58061214"
)


@functools.cache
def png_bytes() -> bytes:
    """A small real PNG, the 'generated' image."""
    return png.encode_png(64, 64, png.gradient_rows(64, 64, b"\x10\x80\xf0\x01"))


@functools.cache
def mp4_bytes() -> bytes:
    """A small real MP4 (one second), the 'generated' video."""
    return local_media.render_mp4(b"\x10\x80\xf0", 32, 32, seconds=1, fps=2)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def error(code: int, status: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    """A Google API error body (google.rpc.Status in JSON)."""
    return Reply.json(code, {"error": {"code": code, "message": message, "status": status}}, headers)


def quota(model: str, retry_after: float | None) -> Reply:
    message = (
        "Quota exceeded for aiplatform.googleapis.com/generate_content_requests_per_minute_per_project_"
        f"per_base_model with base model: {model}. Please submit a quota increase request."
    )
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    return error(429, "RESOURCE_EXHAUSTED", message, headers)


def predict(scenario: str, body: dict[str, Any]) -> Reply:
    """An Imagen `:predict` answer."""
    params = body.get("parameters") or {}
    count = int(params.get("sampleCount") or 1)
    storage = params.get("storageUri")
    if scenario == "rai-filtered":
        return Reply.json(200, {"predictions": [{"raiFilteredReason": RAI_REASON} for _ in range(count)]})
    if scenario == "empty":
        return Reply.json(200, {})
    run = uuid.uuid4().hex[:12]
    predictions = []
    for i in range(count):
        if (storage and scenario != "success-bytes") or scenario == "success-gcs":
            folder = (storage or "gs://standin-bucket/images/").rstrip("/")
            predictions.append({"mimeType": "image/png", "gcsUri": f"{folder}/{run}/sample_{i}.png"})
        else:
            predictions.append({"mimeType": "image/png", "bytesBase64Encoded": b64(png_bytes())})
    return Reply.json(200, {"predictions": predictions})


def generate_content(scenario: str, model: str) -> Reply:
    """A Gemini `:generateContent` answer (images come back inline, never in Cloud Storage)."""
    usage = {"promptTokenCount": 12, "candidatesTokenCount": 1290, "totalTokenCount": 1302}
    envelope: dict[str, Any] = {"modelVersion": model, "responseId": uuid.uuid4().hex, "usageMetadata": usage}
    if scenario == "prompt-blocked":
        feedback = {"blockReason": "PROHIBITED_CONTENT", "blockReasonMessage": "The prompt was blocked."}
        return Reply.json(200, {**envelope, "promptFeedback": feedback})
    if scenario == "rai-filtered":
        return Reply.json(200, {**envelope, "candidates": [{"finishReason": "IMAGE_SAFETY", "index": 0}]})
    parts: list[dict[str, Any]] = [{"text": "Here is the image you asked for."}]
    if scenario != "empty":
        parts.append({"inlineData": {"mimeType": "image/png", "data": b64(png_bytes())}})
    candidate = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
    return Reply.json(200, {**envelope, "candidates": [candidate]})


def operation_name(project: str, location: str, model: str) -> str:
    model_path = f"projects/{project}/locations/{location}/publishers/google/models/{model}"
    return f"{model_path}/operations/{uuid.uuid4()}"


def operation(name: str, scenario: str, *, done: bool, count: int, storage: str | None) -> Reply:
    """A Veo operation as `:fetchPredictOperation` returns it (`done` is omitted while running)."""
    if not done:
        return Reply.json(200, {"name": name})
    if scenario in ("operation-error", "operation-quota"):
        code, message = (8, "Resource exhausted for veo generation.") if scenario == "operation-quota" else (
            3, "The video could not be generated. Support codes: 15236754")
        return Reply.json(200, {"name": name, "done": True, "error": {"code": code, "message": message}})
    response: dict[str, Any] = {"@type": VIDEO_RESPONSE_TYPE, "raiMediaFilteredCount": 0}
    if scenario == "rai-filtered":
        response.update(raiMediaFilteredCount=count, raiMediaFilteredReasons=[VIDEO_RAI_REASON])
    elif scenario != "empty":
        run = name.rsplit("/", 1)[-1]
        response["videos"] = [
            {"gcsUri": f"{storage.rstrip('/')}/{run}/sample_{i}.mp4", "mimeType": "video/mp4"}
            if storage and scenario != "video-bytes"
            else {"bytesBase64Encoded": b64(mp4_bytes()), "mimeType": "video/mp4"}
            for i in range(count)
        ]
    return Reply.json(200, {"name": name, "done": True, "response": response})
