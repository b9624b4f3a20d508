"""Read one environment's terraform.tfvars for deploy.sh: names, per-function settings, the pool budget.

`infra/environments/<env>/terraform.tfvars` is the single place an environment's settings live:
Terraform reads it for the platform, deploy.sh reads it through this module for the functions. The
names and the pool formula below mirror `infra/modules/settings`; tests/infra evaluates that module
with Terraform and checks that both agree. Terraform validates every rule; this module checks what
deploy.sh relies on, so a bad file fails before any gcloud command instead of half-way through.

Usage: python infra/scripts/deploy_config.py TFVARS ENV  -> `key=value` lines, or one error line.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FUNCTIONS = ("generation", "batch", "scheduling")
SERVICE_ACCOUNT_ROLES = (*FUNCTIONS, "scheduler", "eventarc", "builder")
EVENT_FUNCTION_MAX_TIMEOUT = 540  # seconds; the limit of an event-driven gen2 function
# Functions that get API_KEY_PEPPER: those whose start-up refuses to go on without it (shared/config.py).
# Mirrors api_key_pepper_functions in infra/modules/settings, which grants them the secret.
API_KEY_PEPPER_FUNCTIONS = ("generation", "scheduling")
HTTP_FUNCTIONS = ("generation", "scheduling")  # the ones with /v1 routes, API keys and rate limits
# Stands for the project number in the scheduling URL until deploy.sh (or Terraform) knows it.
PROJECT_NUMBER = "PROJECT_NUMBER"
# rate_limits key -> the env var shared/config.py reads.
RATE_LIMIT_ENV = {
    "window_seconds": "RATE_LIMIT_WINDOW_SECONDS", "generate": "RATE_LIMIT_GENERATE",
    "batch_items": "RATE_LIMIT_BATCH_ITEMS", "schedule": "RATE_LIMIT_SCHEDULE", "read": "RATE_LIMIT_READ",
}
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:@/ -]*$")  # nothing gcloud's comma lists or the shell trip on
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
    allow_unauthenticated: bool
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


@dataclass(frozen=True)
class Environment:
    """Everything deploy.sh needs to know about one environment."""

    name: str
    values: dict[str, Any]
    functions: dict[str, FunctionSettings]

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def service_account_id(self, role: str) -> str:
        return f"{self['name_prefix']}-{role}"

    def service_account_email(self, role: str) -> str:
        return f"{self.service_account_id(role)}@{self['project_id']}.iam.gserviceaccount.com"

    def names(self) -> dict[str, str]:
        """Resource names, exactly as infra/modules/settings builds them."""
        prefix, project = self["name_prefix"], self["project_id"]
        instance = f"{prefix}-pg"
        return {
            "batch_topic": f"{prefix}-batch",
            "dead_letter_topic": f"{prefix}-batch-dead-letter",
            "dead_letter_subscription": f"{prefix}-batch-dead-letter",
            "output_bucket": f"{project}-{prefix}-outputs",
            "sql_instance": instance,
            "instance_connection_name": f"{project}:{self['region']}:{instance}",
            "database": "genmedia",
            "db_owner_user": "genmedia",
            "db_password_secret": f"{prefix}-db-password",
            "api_key_pepper_secret": f"{prefix}-api-key-pepper",
            "scheduler_job": f"{prefix}-schedules-tick",
        }

    def scheduling_url_template(self) -> str:
        """The scheduling function's run.app URL with PROJECT_NUMBER still in it (as module.settings)."""
        return f"https://{self.function_name('scheduling')}-{PROJECT_NUMBER}.{self['region']}.run.app"

    def scheduler_audience(self, project_number: str = PROJECT_NUMBER) -> str:
        """SCHEDULER_AUDIENCE: the OIDC audience Terraform gives the Cloud Scheduler job."""
        return self.scheduling_url_template().replace(PROJECT_NUMBER, project_number)

    def function_name(self, fn: str) -> str:
        return f"{self['name_prefix']}-{fn}"

    def db_user(self, fn: str) -> str:
        """The IAM database user of `fn` (its email minus .gserviceaccount.com), or the owner."""
        if self["db_iam_auth"]:
            return self.service_account_email(fn).removesuffix(".gserviceaccount.com")
        return self.names()["db_owner_user"]

    def pool_budget(self) -> tuple[int, int]:
        """(connections the functions may open, connections Cloud SQL leaves them)."""
        total = sum(f.max_connections for f in self.functions.values())
        return total, self["db_max_connections"] - self["db_connection_reserve"]

    def function_env(self, fn: str, project_number: str = PROJECT_NUMBER) -> dict[str, str]:
        """The env vars of `fn` on Google Cloud (contract section 3); secrets come separately.

        SCHEDULER_AUDIENCE holds the PROJECT_NUMBER placeholder unless `project_number` is given;
        deploy.sh replaces it once it has looked the number up.
        """
        f, names = self.functions[fn], self.names()
        env = {
            "GOOGLE_CLOUD_PROJECT": self["project_id"],
            "GENERATION_BACKEND": "vertex",
            "VERTEX_LOCATION": self["vertex_location"],
            "OUTPUT_BUCKET": names["output_bucket"],
            "PUBSUB_BATCH_TOPIC": names["batch_topic"],
            "MAX_DELIVERY_ATTEMPTS": str(self["max_delivery_attempts"]),
            "LOG_LEVEL": self["log_level"],
            "INSTANCE_CONNECTION_NAME": names["instance_connection_name"],
            "DB_NAME": names["database"],
            "DB_USER": self.db_user(fn),
            "DB_IAM_AUTH": "true" if self["db_iam_auth"] else "false",
            "FUNCTION_CONCURRENCY": str(f.concurrency),
            # Set explicitly (not left to the formula) so the code and the budget cannot disagree.
            "DB_POOL_SIZE": str(f.pool_size),
            "DB_MAX_OVERFLOW": str(f.max_overflow),
            "DB_POOL_TIMEOUT": _number(self["db_pool_timeout_seconds"]),
            "DB_CONNECT_TIMEOUT": _number(self["db_connect_timeout_seconds"]),
        }
        if fn in HTTP_FUNCTIONS:
            # The same numbers in both: the counters live in PostgreSQL and both serve "read".
            env.update({name: str(int(self["rate_limits"][key])) for key, name in RATE_LIMIT_ENV.items()})
        if fn == "scheduling":
            # :tick accepts only Cloud Scheduler's OIDC token for this audience and this account,
            # exactly what Terraform's scheduler job (oidc_token) sends.
            env["SCHEDULER_AUDIENCE"] = self.scheduler_audience(project_number)
            env["SCHEDULER_SERVICE_ACCOUNT"] = self.service_account_email("scheduler")
        return env

    def function_secrets(self, fn: str) -> dict[str, str]:
        """Secret env vars of `fn` as gcloud --set-secrets takes them (never their values)."""
        names, secrets = self.names(), {}
        if fn in API_KEY_PEPPER_FUNCTIONS:
            secrets["API_KEY_PEPPER"] = f"{names['api_key_pepper_secret']}:latest"
        if not self["db_iam_auth"]:
            secrets["DB_PASS"] = f"{names['db_password_secret']}:latest"
        return secrets


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _require(values: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    if key not in values:
        raise ConfigError(f"{key}: missing (every setting is stated in terraform.tfvars)")
    value = values[key]
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise ConfigError(f"{key}: must be {_KINDS.get(kind, 'a number')}")
    return value


def _whole(values: dict[str, Any], key: str, low: int, high: int | None = None) -> int:
    value = _require(values, key, (int, float))
    if value != int(value) or value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ConfigError(f"{key}: must be a whole number {bound}")
    return int(value)


def _function(fn: str, raw: Any) -> FunctionSettings:
    if not isinstance(raw, dict):
        raise ConfigError(f"functions.{fn}: must be an object")
    at = {f"functions.{fn}.{k}": v for k, v in raw.items()}
    key = f"functions.{fn}."
    for name in ("memory", "cpu", "ingress"):
        _require(at, key + name, str)
    if not re.fullmatch(r"[0-9]+(Mi|Gi)", raw["memory"]):
        raise ConfigError(f"{key}memory: must be a size such as 512Mi or 1Gi")
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", raw["cpu"]):
        raise ConfigError(f'{key}cpu: must be a number of vCPUs written as a string ("1", "0.5")')
    limit = EVENT_FUNCTION_MAX_TIMEOUT if fn == "batch" else 3600
    timeout = _whole(at, key + "timeout_seconds", 1, limit)
    concurrency = _whole(at, key + "concurrency", 1, 1000)
    min_instances = _whole(at, key + "min_instances", 0)
    max_instances = _whole(at, key + "max_instances", max(1, min_instances))
    public = _require(at, key + "allow_unauthenticated", bool)
    if fn == "batch" and public:
        raise ConfigError(f"{key}allow_unauthenticated: must be false (only its Eventarc trigger calls it)")
    if fn == "scheduling" and not public:
        raise ConfigError(
            f"{key}allow_unauthenticated: must be true (:tick verifies Cloud Scheduler's OIDC token itself, "
            "and Cloud Run strips its signature when it checks IAM; /v1 routes still need an API key)"
        )
    size = raw.get("db_pool_size")
    overflow = raw.get("db_max_overflow")
    size = None if size is None else _whole(at, key + "db_pool_size", 1, 100)
    overflow = None if overflow is None else _whole(at, key + "db_max_overflow", 0, 100)
    pool_size, max_overflow = derive_pool(concurrency, size, overflow)
    return FunctionSettings(
        memory=raw["memory"], cpu=raw["cpu"], timeout_seconds=timeout, min_instances=min_instances,
        max_instances=max_instances, concurrency=concurrency, ingress=raw["ingress"],
        allow_unauthenticated=public, pool_size=pool_size, max_overflow=max_overflow,
    )


def _rate_limits(values: dict[str, Any]) -> None:
    raw = _require(values, "rate_limits", dict)
    at = {f"rate_limits.{k}": v for k, v in raw.items()}
    for key in RATE_LIMIT_ENV:
        if key == "window_seconds":
            _whole(at, "rate_limits.window_seconds", 1, 3600)
        else:
            _whole(at, f"rate_limits.{key}", 0)
    extra = sorted(set(raw) - set(RATE_LIMIT_ENV))
    if extra:
        raise ConfigError(f"rate_limits.{extra[0]}: unknown (the keys are {', '.join(RATE_LIMIT_ENV)})")


_STRINGS = ("project_id", "region", "name_prefix", "runtime", "log_level", "vertex_location")


def parse_environment(name: str, values: dict[str, Any]) -> Environment:
    """Check what deploy.sh relies on and derive each function's pool."""
    for key in _STRINGS:
        if not _SAFE_VALUE.match(_require(values, key, str)):
            raise ConfigError(f"{key}: contains characters a resource name cannot have")
    _whole(values, "max_delivery_attempts", 5, 100)
    _whole(values, "db_max_connections", 25, 262143)
    _whole(values, "db_connection_reserve", 10)
    _require(values, "db_iam_auth", bool)
    _require(values, "db_pool_timeout_seconds", (int, float))
    _require(values, "db_connect_timeout_seconds", (int, float))
    _rate_limits(values)
    members = _require(values, "invoker_members", list)
    if any(not isinstance(m, str) or m in ("allUsers", "allAuthenticatedUsers") for m in members):
        raise ConfigError("invoker_members: must list IAM principals (allUsers is set per function instead)")
    raw = _require(values, "functions", dict)
    if sorted(raw) != sorted(FUNCTIONS):
        raise ConfigError("functions: must have exactly the keys generation, batch and scheduling")
    functions = {fn: _function(fn, raw[fn]) for fn in FUNCTIONS}
    return Environment(name=name, values=values, functions=functions)


def check_pool_budget(env: Environment) -> None:
    """Refuse a fleet whose pools could exhaust Cloud SQL's max_connections (minus the reserve)."""
    total, available = env.pool_budget()
    if total >= available:
        parts = " + ".join(
            f"{fn} {f.max_instances}x({f.pool_size}+{f.max_overflow})" for fn, f in env.functions.items()
        )
        raise ConfigError(
            f"pool budget exceeded in {env.name}: the functions may open {total} connections ({parts}), "
            f"which must stay below db_max_connections {env['db_max_connections']} - "
            f"db_connection_reserve {env['db_connection_reserve']} = {available}; "
            "lower max_instances or concurrency, or raise db_max_connections"
        )


def load_environment(tfvars: Path, name: str) -> Environment:
    """Parse `tfvars` (HCL) and check it, the pool budget included."""
    import hcl2  # python-hcl2, from requirements-dev.txt

    if not tfvars.is_file():
        raise ConfigError(f"{tfvars}: no such file (is '{name}' an environment under infra/environments/?)")
    options = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
    try:
        with tfvars.open() as handle:
            values = hcl2.load(handle, serialization_options=options)
    except Exception as exc:
        raise ConfigError(f"{tfvars}: not valid HCL ({type(exc).__name__})") from exc
    env = parse_environment(name, values)
    check_pool_budget(env)
    return env


def _joined(pairs: dict[str, str]) -> str:
    """KEY=VALUE,... for gcloud, refusing a value that would split the list."""
    for key, value in pairs.items():
        if not _SAFE_VALUE.match(value):
            raise ConfigError(f"{key}: value has characters deploy.sh cannot pass safely")
    return ",".join(f"{key}={value}" for key, value in pairs.items())


def render(env: Environment) -> list[str]:
    """`key=value` lines deploy.sh reads into an associative array (values hold no newline)."""
    lines = {f"name.{key}": value for key, value in env.names().items()}
    lines.update({f"sa.{role}": env.service_account_email(role) for role in SERVICE_ACCOUNT_ROLES})
    for key in ("project_id", "region", "runtime", "max_delivery_attempts"):
        lines[key] = str(env[key])
    lines["db_iam_auth"] = "true" if env["db_iam_auth"] else "false"
    lines["invoker_members"] = " ".join(env["invoker_members"])
    lines["db_users"] = " ".join(sorted({env.db_user(fn) for fn in FUNCTIONS}))
    for key, value in lines.items():
        if not _SAFE_VALUE.match(value):
            raise ConfigError(f"{key}: value has characters deploy.sh cannot pass safely")
    for fn, f in env.functions.items():
        at = f"fn.{fn}."
        lines.update({
            at + "name": env.function_name(fn), at + "memory": f.memory, at + "cpu": f.cpu,
            at + "timeout": f"{f.timeout_seconds}s", at + "min_instances": str(f.min_instances),
            at + "max_instances": str(f.max_instances), at + "concurrency": str(f.concurrency),
            at + "ingress": f.ingress, at + "public": "true" if f.allow_unauthenticated else "false",
            at + "env_vars": _joined(env.function_env(fn)),
            at + "secrets": _joined(env.function_secrets(fn)),
        })
    return [f"{key}={value}" for key, value in lines.items()]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: deploy_config.py TFVARS ENV", file=sys.stderr)  # noqa: T201
        return 2
    try:
        env = load_environment(Path(argv[0]), argv[1])
        print("\n".join(render(env)))  # noqa: T201
    except ConfigError as err:
        print(f"deploy.sh: {err}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
