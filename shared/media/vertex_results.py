"""What Vertex AI answered, as media to keep or as the error that explains why there is none."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.exceptions import ContentFilteredError, ImagenGenerationError, VeoGenerationError
from shared.media.upstream import sanitise

if TYPE_CHECKING:
    from google.genai import types

# Candidate finish reasons that mean a safety or policy filter removed the output.
_FILTERED_FINISH = frozenset({
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR",
})
# google.rpc.Code of a finished operation's error -> the reason stored on the failed job.
_OPERATION_REASONS = {
    1: "UPSTREAM_CANCELLED", 4: "UPSTREAM_TIMEOUT", 8: "UPSTREAM_QUOTA_EXCEEDED",
    **dict.fromkeys((2, 10, 13, 14), "UPSTREAM_UNAVAILABLE"),
}


@dataclass(frozen=True)
class Produced:
    """One output as Vertex gave it: already in Cloud Storage (`uri`) or as bytes still to upload."""

    mime_type: str
    uri: str | None = None
    data: bytes | None = None


def _empty(error: type[ImagenGenerationError | VeoGenerationError], what: str, detail: str) -> Exception:
    err = error(f"the model finished without producing any {what}", detail=detail)
    err.reason = "VIDEO_EMPTY_RESULT" if what == "video" else "IMAGE_EMPTY_RESULT"
    return err


def imagen_media(response: types.GenerateImagesResponse) -> list[Produced]:
    """The images of a `:predict` answer; filtered ones are skipped, all filtered is an error."""
    produced: list[Produced] = []
    filtered: list[str] = []
    for generated in response.generated_images or []:
        image = generated.image
        mime = (image.mime_type if image else None) or "image/png"
        if image is not None and image.gcs_uri:
            produced.append(Produced(mime, uri=image.gcs_uri))
        elif image is not None and image.image_bytes:
            produced.append(Produced(mime, data=image.image_bytes))
        elif generated.rai_filtered_reason:
            filtered.append(generated.rai_filtered_reason)
    if produced:
        return produced
    if filtered:
        raise ContentFilteredError(detail=f"raiFilteredReason: {sanitise('; '.join(filtered))}")
    raise _empty(ImagenGenerationError, "image", "predictions held no image")


def gemini_media(response: types.GenerateContentResponse) -> list[Produced]:
    """The inline images of a `:generateContent` answer; a blocked prompt or output is an error."""
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason:
        detail = f"promptFeedback.blockReason {_name(feedback.block_reason)}"
        raise ContentFilteredError(detail=sanitise(f"{detail} {feedback.block_reason_message or ''}"))
    produced: list[Produced] = []
    finish: list[str] = []
    for candidate in response.candidates or []:
        if candidate.finish_reason:
            finish.append(_name(candidate.finish_reason))
        parts = candidate.content.parts if candidate.content else None
        for part in parts or []:
            blob = part.inline_data
            if blob is not None and blob.data and (blob.mime_type or "").startswith("image/"):
                produced.append(Produced(blob.mime_type or "image/png", data=blob.data))
    if produced:
        return produced
    if _FILTERED_FINISH.intersection(finish):
        raise ContentFilteredError(detail=f"finishReason {', '.join(finish)}")
    raise _empty(ImagenGenerationError, "image", f"no image part; finishReason {', '.join(finish) or 'none'}")


def video_media(operation: types.GenerateVideosOperation) -> list[Produced] | None:
    """None while the operation runs; its videos once done; an error if it ended without any."""
    if not operation.done:
        return None
    if operation.error:
        raise operation_error(operation.error)
    result = operation.response or operation.result
    produced: list[Produced] = []
    for generated in (result.generated_videos if result else None) or []:
        video = generated.video
        mime = (video.mime_type if video else None) or "video/mp4"
        if video is not None and video.uri:
            produced.append(Produced(mime, uri=video.uri))
        elif video is not None and video.video_bytes:
            produced.append(Produced(mime, data=video.video_bytes))
    if produced:
        return produced
    if result is not None and result.rai_media_filtered_count:
        count, reasons = result.rai_media_filtered_count, "; ".join(result.rai_media_filtered_reasons or [])
        raise ContentFilteredError(detail=f"raiMediaFilteredCount {count}: {sanitise(reasons)}")
    # Vertex bills these; the distinct reason lets operators count them.
    raise _empty(VeoGenerationError, "video", "operation done with no videos")


def operation_error(error: dict[str, Any]) -> VeoGenerationError:
    """The terminal error of a finished operation (non-retryable: this operation is over)."""
    code = error.get("code")
    message = sanitise(error.get("message") or "")
    err = VeoGenerationError(
        f"{VeoGenerationError.default_message}: {message}" if message else None,
        detail=f"operation error code {code}: {message}",
    )
    if isinstance(code, int) and code in _OPERATION_REASONS:
        err.reason = _OPERATION_REASONS[code]
    return err


def _name(value: object) -> str:
    """An SDK enum (or a plain string the SDK did not know) as its wire name."""
    return str(getattr(value, "value", value))
