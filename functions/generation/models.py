"""Bodies of the generation function's routes, validated at the edge."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.media.request import GenerationRequest
from shared.uploads.uploads import Upload, UploadCreate

__all__ = ["MAX_BATCH_ITEMS", "BatchCreate", "Upload", "UploadCreate"]

MAX_BATCH_ITEMS = 1000


class BatchCreate(BaseModel):
    """`POST /v1/batches`: up to 1,000 generation requests."""

    model_config = ConfigDict(extra="forbid")

    items: list[GenerationRequest] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)
