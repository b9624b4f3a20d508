"""The generation request every entry point accepts (HTTP body, batch item, schedule)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Kind = Literal["image", "video"]
ReferenceType = Literal["asset", "style"]
# What Vertex AI reads as an input picture; the magic bytes decide, never a declared type.
IMAGE_MIME_TYPES = ("image/png", "image/jpeg", "image/webp")
MAX_INPUT_IMAGES = 14  # the most any model takes (Gemini 3 Pro Image); each model's own limit binds first


class MediaRef(BaseModel):
    """A picture the caller owns: `{"uri"}`, `{"upload_id"}` or `{"job_id", "output"}`.

    Once resolved (ownership checked, bytes inspected) a reference is stored as `{"uri", "mime_type"}`:
    `mime_type` is what genmedia read from the file and is recomputed on every request, so a caller
    who sends one only has it overwritten.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    uri: str | None = Field(default=None, min_length=6, max_length=1024, pattern=r"^(gs|file)://")
    upload_id: str | None = Field(default=None, min_length=5, max_length=64, pattern=r"^upl_[A-Za-z0-9]+$")
    # A job alone (`gen_...`) or an item of a batch (`bat_..._0007`).
    job_id: str | None = Field(default=None, min_length=5, max_length=80, pattern=r"^(gen|bat)_[A-Za-z0-9_]+$")
    output: int | None = Field(default=None, ge=0, le=7, strict=True)
    mime_type: Literal["image/png", "image/jpeg", "image/webp"] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> MediaRef:
        given = [name for name in ("uri", "upload_id", "job_id") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of uri, upload_id, job_id")
        if self.output is not None and self.job_id is None:
            raise ValueError("output goes with job_id")
        return self

    @property
    def resolved(self) -> bool:
        """True once genmedia has checked it: a canonical URI with the type read from the file."""
        return self.uri is not None and self.mime_type is not None


class ReferenceImage(BaseModel):
    """A Veo reference image: an `asset` (a subject to keep) or a `style` (a look to apply)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: MediaRef
    type: ReferenceType = "asset"


class GenerationRequest(BaseModel):
    """What to generate. Fields a model does not support are rejected by the capability table."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    kind: Kind
    prompt: str = Field(min_length=1, max_length=20_000)
    model: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9.\-]*$")
    negative_prompt: str | None = Field(default=None, max_length=20_000)
    number_of_outputs: int | None = Field(default=None, ge=1, le=8, strict=True)
    aspect_ratio: str | None = Field(default=None, max_length=10)
    resolution: str | None = Field(default=None, max_length=10)
    duration_seconds: int | None = Field(default=None, ge=1, le=60, strict=True)
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1, strict=True)
    person_generation: Literal["dont_allow", "allow_adult", "allow_all"] | None = None
    generate_audio: bool | None = Field(default=None, strict=True)
    # Inputs (see shared/uploads/references.py): a video's first frame or the picture to edit, a
    # video's last frame, Veo's reference images, and the pictures a Gemini image model composes.
    image: MediaRef | None = None
    last_frame: MediaRef | None = None
    reference_images: list[ReferenceImage] | None = Field(default=None, min_length=1, max_length=3)
    input_images: list[MediaRef] | None = Field(default=None, min_length=1, max_length=MAX_INPUT_IMAGES)

    def inputs(self) -> list[tuple[str, MediaRef]]:
        """Every input picture with the field path that names it (`reference_images[1].image`)."""
        found: list[tuple[str, MediaRef]] = []
        if self.image is not None:
            found.append(("image", self.image))
        if self.last_frame is not None:
            found.append(("last_frame", self.last_frame))
        for i, reference in enumerate(self.reference_images or ()):
            found.append((f"reference_images[{i}].image", reference.image))
        for i, ref in enumerate(self.input_images or ()):
            found.append((f"input_images[{i}]", ref))
        return found


class MediaOutput(BaseModel):
    """One generated file: where it is and what it is. Jobs never hold media bytes."""

    model_config = ConfigDict(frozen=True)

    uri: str
    mime_type: str
