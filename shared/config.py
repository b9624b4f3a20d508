"""Every setting of every function, read once from the environment and validated at start-up.

A pydantic model fed from `os.environ` rather than pydantic-settings: the same validation and error
messages, without pydantic-settings' import (56-77 ms measured here, most of what a cold start spent
above a bare functions-framework function).
"""

from __future__ import annotations

import math
import os
import sys
from functools import lru_cache
from typing import Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from shared.quotas.spec import Quota, parse_quotas

_MiB = 1024 * 1024


class Settings(BaseModel):
    """The environment, typed. Field names are the env vars, upper-cased; keyword arguments win."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    database_url: SecretStr | None = None
    instance_connection_name: str | None = None
    db_user: str | None = None
    db_name: str | None = None
    db_pass: SecretStr | None = None
    db_iam_auth: bool = False
    # Concurrent requests one instance serves (Cloud Functions gen2 `--concurrency`); sizes the pool.
    function_concurrency: int = Field(default=1, ge=1, le=1000)
    db_pool_size: int | None = Field(default=None, ge=1, le=100)
    db_max_overflow: int | None = Field(default=None, ge=0, le=100)
    db_pool_timeout: float = Field(default=5.0, gt=0, le=120)
    db_pool_recycle: int = Field(default=1800, ge=-1)
    db_connect_timeout: float = Field(default=5.0, gt=0, le=120)

    google_cloud_project: str = "genmedia-local"
    generation_backend: Literal["vertex", "local"] = "vertex"
    vertex_location: str = Field(default="us-central1", pattern=r"^[a-z0-9-]+$")
    vertex_base_url: str | None = Field(default=None, pattern=r"^https?://")
    vertex_token: SecretStr | None = None
    vertex_deadline_seconds: float = Field(default=60.0, gt=0, le=540)
    # Videos are polled at most this often, backing off by 1.5x per poll up to the maximum.
    video_poll_interval_seconds: float = Field(default=10.0, ge=0, le=600)
    video_poll_max_interval_seconds: float = Field(default=60.0, ge=0, le=3600)
    output_bucket: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
    local_data_dir: str = ".local/data"
    # The local backend's videos stay "running" this long, so the asynchronous path is exercised.
    local_video_delay_seconds: float = Field(default=2.0, ge=0, le=600)

    pubsub_batch_topic: str | None = None
    max_delivery_attempts: int = Field(default=5, ge=1, le=100)
    # A batch item's lease outlives the Vertex deadline by this margin; then the tick may requeue it.
    item_lease_margin_seconds: float = Field(default=30.0, ge=1, le=3600)
    # Items still queued this long after their last enqueue are published again by the tick.
    item_requeue_after_seconds: float = Field(default=600.0, ge=1, le=86_400)
    pubsub_publish_timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    # Crons firing more often than this are refused (Cloud Scheduler ticks once a minute anyway).
    schedule_min_interval_seconds: int = Field(default=60, ge=60, le=86_400)
    tick_claim_chunk: int = Field(default=200, ge=1, le=5000)
    # Items (not schedules) one tick transaction fires: a chunk of 1,000-item schedules stays small.
    tick_claim_items: int = Field(default=2000, ge=1, le=100_000)
    # Per owner: stored schedules and the bytes of their requests; creating one more is refused.
    schedule_max_per_owner: int = Field(default=100, ge=1, le=100_000)
    schedule_max_bytes_per_owner: int = Field(default=16 * _MiB, ge=1024, le=1024 * _MiB)
    # A page of GET /v1/schedules stops before it passes this many bytes (at least one schedule).
    schedule_list_max_bytes: int = Field(default=256 * 1024, ge=1024, le=16 * _MiB)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_file: str | None = None
    log_file_max_bytes: int = Field(default=10 * _MiB, ge=1024)
    log_file_backups: int = Field(default=3, ge=0, le=100)
    # Spans go to Cloud Trace (`gcp`), to stderr as one JSON line each (`console`), or nowhere. Only a
    # request or event whose inbound trace is sampled records any; the SDK loads on the first of them.
    trace_exporter: Literal["gcp", "console", "none"] = "none"

    # HMAC key of stored API keys (Secret Manager in the cloud); the same in every function.
    api_key_pepper: SecretStr | None = None
    # Revocation reaches other instances within this many seconds (0 = no cache).
    api_key_cache_seconds: float = Field(default=10.0, ge=0, le=300)
    rate_limit_window_seconds: int = Field(default=60, ge=1, le=3600)
    rate_limit_generate: int = Field(default=60, ge=0)
    rate_limit_batch_items: int = Field(default=1000, ge=0)
    rate_limit_schedule: int = Field(default=30, ge=0)
    rate_limit_read: int = Field(default=600, ge=0)
    # The project's Vertex AI budget per model (`model=CALLS/SECONDS,...`), shared by every instance of
    # every function; the share of each window kept for synchronous generations.
    vertex_quotas: dict[str, Quota] = Field(default_factory=dict)
    vertex_quota_sync_share: float = Field(default=0.2, ge=0, le=0.9)
    breaker_failure_threshold: int = Field(default=5, ge=1, le=100)
    breaker_reset_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    # Cloud Scheduler's OIDC token on :tick: its audience, service account, and the certs to verify it.
    scheduler_audience: str | None = None
    scheduler_service_account: str | None = None
    scheduler_certs_url: str = "https://www.googleapis.com/oauth2/v1/certs"

    # Webhooks: http and loopback/private targets only for local development and tests (never
    # link-local or metadata); the secret versions signed with, current first (rotation: "2,1", then "2").
    webhook_allow_private: bool = False
    webhook_secret_versions: str = Field(default="1", pattern=r"^\s*[1-9][0-9]{0,5}(\s*,\s*[1-9][0-9]{0,5})*\s*$")
    webhook_timeout_seconds: float = Field(default=15.0, gt=0, le=60)
    # POSTs in flight at once per sender; each round claims twice this many deliveries.
    webhook_send_concurrency: int = Field(default=8, ge=1, le=64)
    webhook_tick_budget_seconds: float = Field(default=30.0, gt=0, le=300)

    max_request_bytes: int = Field(default=_MiB, ge=1024, le=32 * _MiB)
    # How long an upload URL accepts its PUT; the bytes themselves live until the bucket's lifecycle rule.
    upload_url_ttl_seconds: int = Field(default=900, ge=60, le=7 * 86_400)

    # Download links (`url` of every output): how long each is valid, the public URL of the generation
    # function when links are minted outside one of its requests, and the account whose key signs the
    # Cloud Storage redirect through IAM signBlob (default: the function's own).
    download_url_ttl_seconds: int = Field(default=900, ge=1, le=43_200)
    download_base_url: str | None = Field(default=None, pattern=r"^https?://[^\s?#]+$")
    download_signer_service_account: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: object) -> object:
        """Env vars under the explicit arguments; an empty variable counts as unset."""
        given = dict(data) if isinstance(data, dict) else {}
        environ = {name: os.environ[name.upper()] for name in cls.model_fields if name.upper() in os.environ}
        merged = {**environ, **given}
        level = merged.get("log_level")
        if isinstance(level, str):
            merged["log_level"] = level.upper()
        return {k: v for k, v in merged.items() if v != ""}

    @field_validator("vertex_quotas", mode="before")
    @classmethod
    def _parse_quotas(cls, value: object) -> object:
        return parse_quotas(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_database(self) -> Settings:
        if self.instance_connection_name and not self.database_url:
            missing = [n for n in ("db_user", "db_name") if not getattr(self, n)]
            if not self.db_iam_auth and self.db_pass is None:
                missing.append("db_pass")
            if missing:
                raise ValueError(
                    f"{missing[0].upper()}: must be set when INSTANCE_CONNECTION_NAME is used"
                    " (with DB_PASS, or DB_IAM_AUTH=true)"
                )
        return self

    def startup_problem(self, *, serves_api: bool = True, signs_webhooks: bool = False) -> str | None:
        """What keeps a function from serving with these settings (tools like migrate need less).

        `serves_api`: the function checks API keys, so it needs the pepper; `signs_webhooks`: it sends
        webhooks, whose secrets derive from the pepper (batch: the last item finishes a batch there).
        """
        if self.generation_backend == "vertex" and not self.output_bucket:
            return "OUTPUT_BUCKET: must be set when GENERATION_BACKEND=vertex"
        pepper = self.api_key_pepper.get_secret_value() if self.api_key_pepper is not None else ""
        if (serves_api or signs_webhooks) and len(pepper) < 32:
            return "API_KEY_PEPPER: must be set to a secret of at least 32 characters"
        if not self.database_url and not self.instance_connection_name:
            return "DATABASE_URL: must be set (or INSTANCE_CONNECTION_NAME with DB_USER and DB_NAME)"
        return None

    @property
    def job_lease_seconds(self) -> float:
        """How long a running job is held before the tick may take it over: the Vertex deadline
        (retries included) plus ITEM_LEASE_MARGIN_SECONDS for the database work around the call."""
        return self.vertex_deadline_seconds + self.item_lease_margin_seconds

    @property
    def pool_size(self) -> int:
        """DB_POOL_SIZE, or half the instance's concurrency, capped at 5."""
        if self.db_pool_size is not None:
            return self.db_pool_size
        return max(1, min(5, math.ceil(self.function_concurrency / 2)))

    @property
    def max_overflow(self) -> int:
        """DB_MAX_OVERFLOW, or the rest of the concurrency, capped at 5."""
        if self.db_max_overflow is not None:
            return self.db_max_overflow
        return max(0, min(5, self.function_concurrency - self.pool_size))


def describe_error(exc: ValidationError) -> str:
    """One line naming the first bad variable and what it must be, never its value."""
    err = exc.errors(include_input=False, include_url=False)[0]
    name = str(err["loc"][0]).upper() if err["loc"] else ""
    msg = str(err["msg"]).removeprefix("Value error, ")
    if not name:  # a model-level rule; its message already starts with the variable's name
        return msg
    expected = err.get("ctx", {}).get("expected")
    if expected:
        msg = f"must be {expected}"
    return f"{name}: {msg}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, parsed on first use."""
    return Settings()


def load_settings_or_exit(*, serves_api: bool = True, signs_webhooks: bool = False) -> Settings:
    """Parse the settings at start-up; on error print one line and exit, with no traceback."""
    try:
        settings = get_settings()
    except ValidationError as exc:
        _exit(describe_error(exc))
    problem = settings.startup_problem(serves_api=serves_api, signs_webhooks=signs_webhooks)
    if problem:
        _exit(problem)
    return settings


def _exit(line: str) -> NoReturn:
    print(f"genmedia: configuration error: {line}", file=sys.stderr)  # noqa: T201
    raise SystemExit(2)
