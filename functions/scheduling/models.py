"""Bodies and views of the scheduling function's routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_serializer, model_validator

from shared.batches import BatchItem
from shared.jobs import JobError, rfc3339
from shared.media.request import GenerationRequest


class ScheduleCreate(BaseModel):
    """`POST /v1/schedules`: one request or a batch, plus a cron with timezone or a one-off run_at."""

    model_config = ConfigDict(extra="forbid")

    request: GenerationRequest | None = None
    requests: list[BatchItem] | None = Field(default=None, min_length=1, max_length=1000)
    cron: str | None = Field(default=None, min_length=9, max_length=200)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    run_at: AwareDatetime | None = None
    webhook_url: str | None = Field(default=None, min_length=1, max_length=2048,
                                    description="https URL told when each run's batch completes")

    @model_validator(mode="after")
    def _one_of_each(self) -> ScheduleCreate:
        if (self.request is None) == (self.requests is None):
            raise ValueError("exactly one of request and requests is required")
        if (self.cron is None) == (self.run_at is None):
            raise ValueError("exactly one of cron and run_at is required")
        if self.run_at is not None and self.timezone is not None:
            raise ValueError("timezone goes with cron, not with run_at")
        return self


class ScheduleRun(BaseModel):
    """One firing: when it was due, and the batch it created or why it created none."""

    due_at: datetime
    batch_id: str | None
    error: JobError | None = None
    created_at: datetime

    @field_serializer("due_at", "created_at")
    def _rfc3339(self, value: datetime) -> str:
        return rfc3339(value)


class ScheduleSummary(BaseModel):
    """A schedule as lists show it: everything but its requests, which only its own GET shows."""

    id: str
    state: Literal["active", "paused", "completed"]
    item_count: int
    cron: str | None = None
    timezone: str | None = None
    run_at: datetime | None = None
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    runs: list[ScheduleRun] = []
    webhook_url: str | None = None
    created_at: datetime
    updated_at: datetime

    @field_serializer("run_at", "next_run_at", "last_run_at", "created_at", "updated_at")
    def _rfc3339(self, value: datetime | None) -> str | None:
        return rfc3339(value) if value is not None else None


class Schedule(ScheduleSummary):
    """A schedule as the API shows it."""

    request: GenerationRequest | None = None
    requests: list[BatchItem] | None = None


class TickResult(BaseModel):
    """What one tick did."""

    fired: int
    refused: int = 0
    published: int
    videos_polled: int
    requeued: int
    interrupted: int = 0
    webhook_attempts: int = 0
    results_written: int = 0
    duplicate_tick: bool
