"""Every rule infra/modules/settings/variables.tf applies to an environment's tfvars, for deploy.sh.

Terraform refuses a bad file at plan time; deploy.sh reads the same file (or one given with
--config) and must refuse it as early, before a migration or a gcloud call has run. tests/infra
breaks each rule in turn and checks that Terraform and this module both refuse it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

FUNCTIONS = ("generation", "batch", "scheduling")
EVENT_FUNCTION_MAX_TIMEOUT = 540  # seconds; the limit of an event-driven gen2 function
RATE_LIMIT_KEYS = ("window_seconds", "generate", "batch_items", "schedule", "read")
# Settings an older tfvars may still hold, and why they went.
REMOVED = {
    "invoker_members": "generation and scheduling are public and check API keys; batch takes only its trigger",
    "allow_unauthenticated": "generation and scheduling are public and check API keys; batch takes only its trigger",
}
_PATTERNS = {
    "project_id": (r"[a-z][a-z0-9-]{4,28}[a-z0-9]", "a project ID: 6-30 lowercase letters, digits or hyphens"),
    "region": (r"[a-z]+-[a-z]+[0-9]+", "a Google Cloud region such as europe-west1"),
    "name_prefix": (r"[a-z][a-z0-9-]{2,17}[a-z0-9]", "4-19 lowercase letters, digits or hyphens"),
    "vertex_location": (r"[a-z0-9-]+", "a Vertex AI location such as us-central1 or global"),
    "scheduler_time_zone": (r"[A-Za-z_]+(/[A-Za-z0-9_+-]+)*", "an IANA time zone such as Etc/UTC"),
    "db_tier": (r"db-[a-z0-9-]+", "a Cloud SQL tier such as db-custom-1-3840"),
}
_CHOICES = {
    "runtime": ("python311", "python312"),
    "log_level": ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
    "db_version": ("POSTGRES_15", "POSTGRES_16", "POSTGRES_17"),
    "db_edition": ("ENTERPRISE", "ENTERPRISE_PLUS"),
    "db_availability_type": ("ZONAL", "REGIONAL"),
}
_WHOLE = {  # name: (low, high or None)
    "max_delivery_attempts": (5, 100), "output_retention_days": (1, 3650), "api_key_pepper_version": (1, None),
    "db_max_connections": (25, 262143), "db_connection_reserve": (10, None), "db_disk_size_gb": (10, None),
}
_SECONDS = ("db_pool_timeout_seconds", "db_connect_timeout_seconds")  # more than 0, at most 120
_BOOLS = ("db_iam_auth", "db_deletion_protection")
INGRESS = ("all", "internal-only", "internal-and-gclb")
_FUNCTION_KEYS = ("memory", "cpu", "timeout_seconds", "min_instances", "max_instances", "concurrency", "ingress",
                  "db_pool_size", "db_max_overflow")
_CHANNEL = r"projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/notificationChannels/[0-9]+"
KNOWN = {*_PATTERNS, *_CHOICES, *_WHOLE, *_SECONDS, *_BOOLS, "scheduler_cron", "notification_channels", "rate_limits",
         "functions"}
_KINDS: dict[type | tuple[type, ...], str] = {
    str: "a string", bool: "true or false", list: "a list", dict: "an object",
}


class ConfigError(Exception):
    """The environment's settings are missing, malformed or over the pool budget; the message says which."""


@dataclass(frozen=True)
class FunctionSettings:
    """One function's deploy settings, with its pool sized the way shared/config.py sizes it."""

    memory: str
    cpu: str
    timeout_seconds: int
    min_instances: int
    max_instances: int
    concurrency: int
    ingress: str
    pool_size: int
    max_overflow: int

    @property
    def max_connections(self) -> int:
        """Connections this function may hold at once across all its instances."""
        return self.max_instances * (self.pool_size + self.max_overflow)


def derive_pool(concurrency: int, pool_size: int | None, max_overflow: int | None) -> tuple[int, int]:
    """DB_POOL_SIZE and DB_MAX_OVERFLOW for an instance serving `concurrency` requests at once."""
    size = pool_size if pool_size is not None else max(1, min(5, math.ceil(concurrency / 2)))
    overflow = max_overflow if max_overflow is not None else max(0, min(5, concurrency - size))
    return size, overflow


def require(values: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    if key not in values:
        raise ConfigError(f"{key}: missing (every setting is stated in the tfvars file)")
    value = values[key]
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise ConfigError(f"{key}: must be {_KINDS.get(kind, 'a number')}")
    return value


def whole(values: dict[str, Any], key: str, low: int, high: int | None = None) -> int:
    value = require(values, key, (int, float))
    if value != int(value) or value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ConfigError(f"{key}: must be a whole number {bound}")
    return int(value)


def _refuse_unknown(values: dict[str, Any], known: set[str] | tuple[str, ...], at: str = "") -> None:
    for key in sorted(set(values) - set(known)):
        why = REMOVED.get(key, f"the settings are {', '.join(sorted(known))}")
        raise ConfigError(f"{at}{key}: not a setting ({why})")


def check_top_level(values: dict[str, Any]) -> None:
    """Every setting but rate_limits and functions, as modules/settings validates it."""
    _refuse_unknown(values, KNOWN)
    for key, (pattern, what) in _PATTERNS.items():
        if not re.fullmatch(pattern, require(values, key, str)):
            raise ConfigError(f"{key}: must be {what}")
    for key, choices in _CHOICES.items():
        if require(values, key, str) not in choices:
            raise ConfigError(f"{key}: must be one of {', '.join(choices)}")
    for key, (low, high) in _WHOLE.items():
        whole(values, key, low, high)
    for key in _SECONDS:
        if not 0 < require(values, key, (int, float)) <= 120:
            raise ConfigError(f"{key}: must be more than 0 and at most 120")
    for key in _BOOLS:
        require(values, key, bool)
    if len(require(values, "scheduler_cron", str).split()) != 5:
        raise ConfigError('scheduler_cron: must be a 5-field cron expression such as "* * * * *"')
    channels = require(values, "notification_channels", list)
    if not all(isinstance(channel, str) and re.fullmatch(_CHANNEL, channel) for channel in channels):
        raise ConfigError("notification_channels: must each be projects/PROJECT/notificationChannels/ID")
    check_rate_limits(values)


def check_rate_limits(values: dict[str, Any]) -> None:
    raw = require(values, "rate_limits", dict)
    at = {f"rate_limits.{k}": v for k, v in raw.items()}
    _refuse_unknown(raw, RATE_LIMIT_KEYS, "rate_limits.")
    whole(at, "rate_limits.window_seconds", 1, 3600)
    for key in RATE_LIMIT_KEYS[1:]:
        whole(at, f"rate_limits.{key}", 0)


def check_functions(values: dict[str, Any]) -> dict[str, FunctionSettings]:
    raw = require(values, "functions", dict)
    if sorted(raw) != sorted(FUNCTIONS):
        raise ConfigError("functions: must have exactly the keys generation, batch and scheduling")
    return {fn: _function(fn, raw[fn]) for fn in FUNCTIONS}


def _function(fn: str, raw: Any) -> FunctionSettings:
    key = f"functions.{fn}."
    if not isinstance(raw, dict):
        raise ConfigError(f"functions.{fn}: must be an object")
    _refuse_unknown(raw, _FUNCTION_KEYS, key)
    at = {key + k: v for k, v in raw.items()}
    memory, cpu, ingress = (require(at, key + name, str) for name in ("memory", "cpu", "ingress"))
    if not re.fullmatch(r"[0-9]+(Mi|Gi)", memory):
        raise ConfigError(f"{key}memory: must be a size such as 512Mi or 1Gi")
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", cpu) or not 0 < float(cpu) <= 8:
        raise ConfigError(f'{key}cpu: must be a number of vCPUs from more than 0 to 8, written as a string ("1")')
    timeout = whole(at, key + "timeout_seconds", 1, EVENT_FUNCTION_MAX_TIMEOUT if fn == "batch" else 3600)
    concurrency = whole(at, key + "concurrency", 1, 1000)
    if concurrency > 1 and float(cpu) < 1:
        raise ConfigError(f'{key}cpu: a concurrency above 1 needs cpu of at least "1"')
    min_instances = whole(at, key + "min_instances", 0)
    max_instances = whole(at, key + "max_instances", max(1, min_instances))
    if ingress not in INGRESS:
        raise ConfigError(f"{key}ingress: must be one of {', '.join(INGRESS)}")
    size = None if raw.get("db_pool_size") is None else whole(at, key + "db_pool_size", 1, 100)
    overflow = None if raw.get("db_max_overflow") is None else whole(at, key + "db_max_overflow", 0, 100)
    pool_size, max_overflow = derive_pool(concurrency, size, overflow)
    return FunctionSettings(
        memory=memory, cpu=cpu, timeout_seconds=timeout, min_instances=min_instances, max_instances=max_instances,
        concurrency=concurrency, ingress=ingress, pool_size=pool_size, max_overflow=max_overflow,
    )
