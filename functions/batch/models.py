"""The Pub/Sub payload of one batch item."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class BatchItemMessage(BaseModel):
    """`{"batch_id", "item_id", "request"}`: the stored job is the source of truth for the request."""

    model_config = ConfigDict(extra="ignore")

    batch_id: str = Field(min_length=1, max_length=200)
    item_id: str = Field(min_length=1, max_length=200)
    request: dict[str, Any] = Field(default_factory=dict)
