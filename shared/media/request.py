"""The generation request every entry point accepts (HTTP body, batch item, schedule)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["image", "video"]


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


class MediaOutput(BaseModel):
    """One generated file: where it is and what it is. Jobs never hold media bytes."""

    model_config = ConfigDict(frozen=True)

    uri: str
    mime_type: str
