"""Bodies of the generation function's routes, validated at the edge."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.batches import BatchItem
from shared.media.request import GenerationRequest
from shared.uploads.uploads import Upload, UploadCreate

__all__ = ["MAX_BATCH_ITEMS", "BatchCreate", "Upload", "UploadCreate"]

MAX_BATCH_ITEMS = 1000
WEBHOOK_URL = Field(default=None, min_length=1, max_length=2048,
                    description="https URL that receives one signed POST when the work finishes")


class GenerationCreate(GenerationRequest):
    """`POST /v1/generations`: a generation request, and where to say when it has finished."""

    webhook_url: str | None = WEBHOOK_URL

    def generation_request(self) -> GenerationRequest:
        """The request alone, as jobs store it."""
        return GenerationRequest.model_validate(self.model_dump(exclude={"webhook_url"}, exclude_none=True))


class BatchCreate(BaseModel):
    """`POST /v1/batches`: up to 1,000 generation requests, each with an optional `custom_id`."""

    model_config = ConfigDict(extra="forbid")

    items: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)
    webhook_url: str | None = WEBHOOK_URL


class DownloadQuery(BaseModel):
    """`GET /v1/files/{object}`: the expiry and signature of a download link, exactly as minted."""

    model_config = ConfigDict(extra="ignore")

    expires: str | None = Field(default=None, max_length=20, description="Unix seconds; part of the signature")
    signature: str | None = Field(default=None, max_length=100, description="HMAC of the object and expiry")
