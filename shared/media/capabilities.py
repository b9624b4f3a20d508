"""What each Vertex AI media model accepts, and the check of a request against it (pure, no I/O).

Sources: the Vertex AI model references for Imagen (`:predict`), Gemini image (`:generateContent`)
and Veo (`:predictLongRunning`), and the google-genai request converters (models.py). A field a
model does not take is refused here with a 400 naming it, rather than sent and billed for a failure.
Input pictures are checked here by presence and count; their bytes (type, size, dimensions) are
checked against `InputLimits` when their references are resolved (shared/uploads/references.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from shared.exceptions import FieldViolation, ValidationError
from shared.media.request import GenerationRequest, Kind

__all__ = [
    "DEFAULT_MODELS",
    "MODELS",
    "ModelCapabilities",
    "capabilities_for",
    "resolve",
    "resolve_all",
]

Api = Literal["imagen", "gemini", "veo"]

# Imagen counts 480 prompt tokens and Veo 1024; we cannot tokenize here, so we allow ~4 characters a
# token (English averages a little less), which refuses only prompts that the model would refuse too.
_IMAGEN_PROMPT_CHARS = 480 * 4
_VEO_PROMPT_CHARS = 1024 * 4
_GEMINI_PROMPT_CHARS = 20_000  # a 32k-token context: the request model's own limit binds first

_IMAGEN_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
_GEMINI_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
_VEO_RATIOS = ("16:9", "9:16")
_ALL_PEOPLE = ("dont_allow", "allow_adult", "allow_all")
# Text-to-video takes only these two; allow_all is for image-to-video only.
_VEO_PEOPLE = ("dont_allow", "allow_adult")
_MB = 1024 * 1024


@dataclass(frozen=True)
class InputLimits:
    """What one model reads as an input picture: types and bytes (Vertex model references)."""

    mime_types: tuple[str, ...] = ("image/png", "image/jpeg")
    max_bytes: int = 20 * _MB


# Veo: "image/jpeg or image/png", 20 MB per image. Gemini image models: PNG, JPEG or WebP, 7 MB inline
# but 30 MB read from Cloud Storage, which is how we always send them.
_VEO_INPUTS = InputLimits(("image/png", "image/jpeg"), 20 * _MB)
_GEMINI_INPUTS = InputLimits(("image/png", "image/jpeg", "image/webp"), 30 * _MB)


@dataclass(frozen=True)
class ModelCapabilities:
    """The request fields one model accepts; an empty tuple or False means "not supported"."""

    model: str
    kind: Kind
    api: Api
    max_prompt_chars: int
    max_outputs: int = 1
    aspect_ratios: tuple[str, ...] = ()
    resolutions: tuple[str, ...] = ()
    durations: tuple[int, ...] = ()
    default_duration: int | None = None
    negative_prompt: bool = False
    seed: bool = False
    person_generation: tuple[str, ...] = ()
    generate_audio: bool = False
    preview: bool = False
    # Inputs: `image` (Veo: first frame; Gemini: the picture to edit), `last_frame` (Veo, with image),
    # Veo reference images per type, and how many pictures a Gemini model takes (image included).
    image: bool = False
    last_frame: bool = False
    reference_images: tuple[tuple[str, int], ...] = ()
    reference_durations: tuple[int, ...] = ()
    reference_aspect_ratios: tuple[str, ...] = ()
    max_input_images: int = 0
    inputs: InputLimits = InputLimits()


def _imagen(model: str, *, resolutions: tuple[str, ...]) -> ModelCapabilities:
    # negativePrompt is refused by imagen-3.0-generate-002 and every later Imagen model.
    return ModelCapabilities(
        model=model, kind="image", api="imagen", max_prompt_chars=_IMAGEN_PROMPT_CHARS,
        max_outputs=4, aspect_ratios=_IMAGEN_RATIOS, resolutions=resolutions, seed=True,
        person_generation=_ALL_PEOPLE,
    )


def _gemini(model: str, *, resolutions: tuple[str, ...], preview: bool, max_inputs: int) -> ModelCapabilities:
    # Image models answer one candidate per call; more outputs would need N calls, N times the cost.
    return ModelCapabilities(
        model=model, kind="image", api="gemini", max_prompt_chars=_GEMINI_PROMPT_CHARS,
        aspect_ratios=_GEMINI_RATIOS, resolutions=resolutions, seed=True,
        person_generation=_ALL_PEOPLE, preview=preview,
        image=True, max_input_images=max_inputs, inputs=_GEMINI_INPUTS,
    )


def _veo(model: str, *, durations: tuple[int, ...], veo3: bool, preview: bool = False,
         last_frame: bool = False, assets: int = 0) -> ModelCapabilities:
    # Reference images (Veo 3.1): up to 3 assets, 8-second 16:9 videos only; style references exist
    # only on veo-2.0-generate-exp, which we do not offer.
    return ModelCapabilities(
        model=model, kind="video", api="veo", max_prompt_chars=_VEO_PROMPT_CHARS, max_outputs=4,
        aspect_ratios=_VEO_RATIOS, resolutions=("720p", "1080p") if veo3 else (),
        durations=durations, default_duration=8, negative_prompt=True, seed=True,
        person_generation=_VEO_PEOPLE, generate_audio=veo3, preview=preview,
        image=True, last_frame=last_frame, reference_images=(("asset", assets),) if assets else (),
        reference_durations=(8,) if assets else (), reference_aspect_ratios=("16:9",) if assets else (),
        inputs=_VEO_INPUTS,
    )


MODELS: dict[str, ModelCapabilities] = {
    c.model: c
    for c in (
        _imagen("imagen-4.0-generate-001", resolutions=("1K", "2K")),
        _imagen("imagen-4.0-fast-generate-001", resolutions=()),
        _imagen("imagen-4.0-ultra-generate-001", resolutions=("1K", "2K")),
        _imagen("imagen-3.0-generate-002", resolutions=()),
        # "Maximum images per prompt": 3 for Gemini 2.5 Flash Image, 14 for Gemini 3 Pro Image.
        _gemini("gemini-2.5-flash-image", resolutions=(), preview=False, max_inputs=3),
        _gemini("gemini-3-pro-image-preview", resolutions=("1K", "2K", "4K"), preview=True, max_inputs=14),
        # First and last frames: Veo 2 and Veo 3.1; Veo 3.0 takes a first frame only.
        _veo("veo-2.0-generate-001", durations=(5, 6, 7, 8), veo3=False, last_frame=True),
        _veo("veo-3.0-generate-001", durations=(4, 6, 8), veo3=True),
        _veo("veo-3.0-fast-generate-001", durations=(4, 6, 8), veo3=True),
        _veo("veo-3.1-generate-preview", durations=(4, 6, 8), veo3=True, preview=True, last_frame=True, assets=3),
        _veo("veo-3.1-fast-generate-preview", durations=(4, 6, 8), veo3=True, preview=True, last_frame=True,
             assets=3),
    )
}

# Images: Gemini 2.5 Flash Image is GA, cheaper and faster than Imagen 4, and is what Google points
# Imagen users to now that Imagen's shutdown is announced. Videos: Veo 3.0 Fast is GA (not preview),
# has audio and 1080p, and costs a fraction of Veo 3.0 for a default nobody chose on purpose.
DEFAULT_MODELS: dict[Kind, str] = {"image": "gemini-2.5-flash-image", "video": "veo-3.0-fast-generate-001"}


def capabilities_for(model: str) -> ModelCapabilities:
    """The capabilities of `model`; an unknown model is a 400 on the field `model`."""
    caps = MODELS.get(model)
    if caps is None:
        raise ValidationError.for_field("model", f"unknown model {model!r}; supported: {', '.join(MODELS)}")
    return caps


def resolve(request: GenerationRequest) -> GenerationRequest:
    """The request with its model filled in, after checking every field against that model.

    Raises:
        ValidationError: one FieldViolation per field the model does not support or has out of range.
    """
    model = request.model or DEFAULT_MODELS[request.kind]
    caps = capabilities_for(model)
    if caps.kind != request.kind:
        raise ValidationError.for_field("model", f"{model} generates {caps.kind}s, not {request.kind}s")
    violations = _violations(request, caps)
    if violations:
        message = "; ".join(f"{v.field}: {v.description}" for v in violations)
        err = ValidationError(message, violations=violations)
        err.metadata["field"] = violations[0].field
        raise err
    return request if request.model == model else request.model_copy(update={"model": model})


def resolve_all(requests: Sequence[tuple[str, GenerationRequest]]) -> list[GenerationRequest]:
    """Resolve several requests, each named by a prefix (`items[3]`); one error lists every bad field."""
    resolved: list[GenerationRequest] = []
    violations: list[FieldViolation] = []
    for prefix, request in requests:
        try:
            resolved.append(resolve(request))
        except ValidationError as err:
            violations += [FieldViolation(f"{prefix}.{v.field}", v.description) for v in err.violations]
    if violations:
        raise ValidationError.from_violations(violations)
    return resolved


def _violations(request: GenerationRequest, caps: ModelCapabilities) -> list[FieldViolation]:
    """Every field of `request` that `caps` refuses, in request-field order."""
    found: list[FieldViolation] = []
    name = caps.model
    if len(request.prompt) > caps.max_prompt_chars:
        limit = caps.max_prompt_chars
        found.append(FieldViolation("prompt", f"must be at most {limit} characters for {name}"))
    if request.negative_prompt is not None and not caps.negative_prompt:
        found.append(FieldViolation("negative_prompt", f"not supported by {name}"))
    if request.number_of_outputs is not None and request.number_of_outputs > caps.max_outputs:
        limit = caps.max_outputs
        found.append(FieldViolation("number_of_outputs", f"must be between 1 and {limit} for {name}"))
    found += _one_of("aspect_ratio", request.aspect_ratio, caps.aspect_ratios, name)
    found += _one_of("resolution", request.resolution, caps.resolutions, name)
    found += _one_of("duration_seconds", request.duration_seconds, caps.durations, name)
    if request.seed is not None and not caps.seed:
        found.append(FieldViolation("seed", f"not supported by {name}"))
    people = caps.person_generation
    if caps.api == "veo" and request.image is not None:
        people = _ALL_PEOPLE  # allow_all is for image-to-video
    found += _one_of("person_generation", request.person_generation, people, name)
    if request.generate_audio is not None and not caps.generate_audio:
        found.append(FieldViolation("generate_audio", f"not supported by {name}"))
    return found + _input_violations(request, caps)


def _input_violations(request: GenerationRequest, caps: ModelCapabilities) -> list[FieldViolation]:
    """Input pictures a model does not take, or takes fewer of, or not in this combination."""
    found: list[FieldViolation] = []
    name = caps.model
    if request.image is not None and not caps.image:
        found.append(FieldViolation("image", f"not supported by {name}"))
    if request.last_frame is not None:
        if not caps.last_frame:
            found.append(FieldViolation("last_frame", f"not supported by {name}"))
        elif request.image is None:
            found.append(FieldViolation("last_frame", "needs image (the first frame)"))
    if request.reference_images is not None:
        found += _reference_violations(request, caps)
    if request.input_images is not None:
        total = len(request.input_images) + (request.image is not None)
        if not caps.max_input_images:
            found.append(FieldViolation("input_images", f"not supported by {name}"))
        elif total > caps.max_input_images:
            found.append(FieldViolation(
                "input_images", f"{name} takes at most {caps.max_input_images} pictures, image included"))
    return found


def _reference_violations(request: GenerationRequest, caps: ModelCapabilities) -> list[FieldViolation]:
    name, limits = caps.model, dict(caps.reference_images)
    if not limits:
        return [FieldViolation("reference_images", f"not supported by {name}")]
    if request.image is not None or request.last_frame is not None:
        return [FieldViolation("reference_images", "cannot be combined with image or last_frame")]
    found = []
    references = request.reference_images or []
    for kind in sorted({r.type for r in references}):
        count = sum(1 for r in references if r.type == kind)
        if count > limits.get(kind, 0):
            allowed = ", ".join(f"up to {n} {k}" for k, n in limits.items())
            found.append(FieldViolation("reference_images", f"{name} takes {allowed} reference images"))
            break
    duration = request.duration_seconds or caps.default_duration
    if duration not in caps.reference_durations:
        allowed = ", ".join(str(d) for d in caps.reference_durations)
        found.append(FieldViolation("duration_seconds", f"must be {allowed} with reference_images for {name}"))
    if request.aspect_ratio is not None and request.aspect_ratio not in caps.reference_aspect_ratios:
        allowed = ", ".join(caps.reference_aspect_ratios)
        found.append(FieldViolation("aspect_ratio", f"must be {allowed} with reference_images for {name}"))
    return found


def _one_of(
    field: str, value: str | int | None, allowed: tuple[str, ...] | tuple[int, ...], model: str
) -> list[FieldViolation]:
    """A violation when `value` is set and not in `allowed` (empty `allowed`: not supported at all)."""
    if value is None or value in allowed:
        return []
    if not allowed:
        return [FieldViolation(field, f"not supported by {model}")]
    return [FieldViolation(field, f"must be one of {', '.join(str(a) for a in allowed)} for {model}")]
