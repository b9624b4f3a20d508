"""Our GenerationRequest as google-genai configs (the SDK turns them into Vertex's camelCase JSON)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.media.capabilities import ModelCapabilities
from shared.media.request import GenerationRequest, MediaRef

if TYPE_CHECKING:
    from google.genai import types

# Gemini's imageConfig spells "no people" differently from Imagen and Veo.
_GEMINI_PEOPLE = {"dont_allow": "ALLOW_NONE", "allow_adult": "ALLOW_ADULT", "allow_all": "ALLOW_ALL"}


def http_options(seconds_left: float) -> types.HttpOptions:
    """Per-attempt HTTP options: this attempt may use what is left of the deadline, no more."""
    from google.genai import types

    return types.HttpOptions(timeout=max(1, int(seconds_left * 1000)))


def image(ref: MediaRef) -> types.Image:
    """A resolved input as Vertex reads it from Cloud Storage: `{gcsUri, mimeType}`, never bytes."""
    from google.genai import types

    if not ref.resolved:
        raise ValueError("resolve input references before building a Vertex request")
    return types.Image(gcs_uri=ref.uri, mime_type=ref.mime_type)


def require_resolved(request: GenerationRequest) -> None:
    """Refuse, before any call, a request whose inputs were not resolved (a bug, never the caller's)."""
    unresolved = [field for field, ref in request.inputs() if not ref.resolved]
    if unresolved:
        raise ValueError(f"resolve input references before building a Vertex request: {unresolved}")


def gemini_contents(request: GenerationRequest) -> types.Content:
    """The user turn: the pictures (`fileData` parts Vertex reads from Cloud Storage), then the prompt."""
    from google.genai import types

    pictures = [request.image] if request.image is not None else []
    pictures += list(request.input_images or ())
    parts = [types.Part.from_uri(file_uri=str(image(p).gcs_uri), mime_type=p.mime_type) for p in pictures]
    return types.Content(role="user", parts=[*parts, types.Part.from_text(text=request.prompt)])


def veo_source(request: GenerationRequest) -> types.GenerateVideosSource:
    """`instances[0]`: the prompt and, for image-to-video, the first frame."""
    from google.genai import types

    first = image(request.image) if request.image is not None else None
    return types.GenerateVideosSource(prompt=request.prompt, image=first)


def imagen_config(
    request: GenerationRequest, folder_uri: str, seconds_left: float
) -> types.GenerateImagesConfig:
    """`:predict` parameters: Vertex writes the images to `folder_uri` (`parameters.storageUri`)."""
    from google.genai import types

    people = types.PersonGeneration(request.person_generation) if request.person_generation else None
    return types.GenerateImagesConfig(
        http_options=http_options(seconds_left),
        output_gcs_uri=folder_uri,
        # Imagen's own default is up to 4 images; a caller who asked for nothing pays for one.
        number_of_images=request.number_of_outputs or 1,
        aspect_ratio=request.aspect_ratio,
        image_size=request.resolution,
        seed=request.seed,
        # Imagen refuses a seed while the SynthID watermark is on; an explicit seed asks for repeatable
        # output, so only then is the watermark dropped (every other image keeps it).
        add_watermark=False if request.seed is not None else None,
        person_generation=people,
        # Filtered images then come back with raiFilteredReason instead of silently missing.
        include_rai_reason=True,
    )


def gemini_config(request: GenerationRequest, seconds_left: float) -> types.GenerateContentConfig:
    """`:generateContent` generationConfig asking for an image (it comes back as inline bytes)."""
    from google.genai import types

    image_config = None
    if request.aspect_ratio or request.resolution or request.person_generation:
        people = _GEMINI_PEOPLE[request.person_generation] if request.person_generation else None
        image_config = types.ImageConfig(
            aspect_ratio=request.aspect_ratio, image_size=request.resolution, person_generation=people
        )
    return types.GenerateContentConfig(
        http_options=http_options(seconds_left),
        # TEXT alongside IMAGE is the combination every Gemini image model accepts; text parts are dropped.
        response_modalities=["TEXT", "IMAGE"],
        seed=request.seed,
        image_config=image_config,
        # No tools, so nothing to call; disabling also spares an INFO log line per request.
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )


def veo_config(request: GenerationRequest, caps: ModelCapabilities, folder_uri: str,
               seconds_left: float) -> types.GenerateVideosConfig:
    """`:predictLongRunning` parameters: Vertex writes the videos to `folder_uri`."""
    from google.genai import types

    audio = request.generate_audio
    if audio is None and caps.generate_audio:
        audio = True  # Veo 3 models require generateAudio; audio is what they are chosen for
    references = None
    if request.reference_images:
        references = [
            types.VideoGenerationReferenceImage(
                image=image(r.image), reference_type=types.VideoGenerationReferenceType(r.type.upper()))
            for r in request.reference_images
        ]
    return types.GenerateVideosConfig(
        http_options=http_options(seconds_left),
        output_gcs_uri=folder_uri,
        number_of_videos=request.number_of_outputs or 1,
        # durationSeconds is required by the Veo API; the models' documented default is 8 s.
        duration_seconds=request.duration_seconds or caps.default_duration,
        aspect_ratio=request.aspect_ratio,
        resolution=request.resolution,
        seed=request.seed,
        negative_prompt=request.negative_prompt,
        person_generation=request.person_generation,
        generate_audio=audio,
        last_frame=image(request.last_frame) if request.last_frame is not None else None,
        reference_images=references,
    )
