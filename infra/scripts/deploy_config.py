"""Read one environment's tfvars for deploy.sh: names, per-function settings, the pool budget.

`infra/environments/<env>.tfvars` is the single place an environment's settings live: Terraform
reads it for the platform, deploy.sh reads it through this module for the functions. The names and
the pool formula below mirror `infra/modules/settings`, and tfvars_rules.py applies every rule that
module does, so a bad file fails before any migration or gcloud command instead of half-way through;
tests/infra evaluates the module with Terraform and checks that both agree.

Usage: python infra/scripts/deploy_config.py TFVARS ENV  -> `key=value` lines, or one error line.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The sibling module, also when this file is loaded by path (the tests) rather than run.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tfvars_rules import (
    FUNCTIONS,
    ConfigError,
    FunctionSettings,
    check_functions,
    check_top_level,
    derive_pool,
)

__all__ = ["ConfigError", "Environment", "FunctionSettings", "derive_pool", "load_environment", "render"]

SERVICE_ACCOUNT_ROLES = (*FUNCTIONS, "scheduler", "eventarc", "builder")
# Functions that get API_KEY_PEPPER: those whose start-up refuses to go on without it (shared/config.py).
# Mirrors api_key_pepper_functions in infra/modules/settings, which grants them the secret.
API_KEY_PEPPER_FUNCTIONS = ("generation", "batch", "scheduling")  # batch signs batch.completed webhooks
# The ones with /v1 routes, API keys and rate limits. They are public at the Cloud Run layer (allUsers
# may invoke) and authenticate every /v1 route themselves: download and upload URLs must work with no
# credentials at all, and :tick verifies Cloud Scheduler's OIDC token itself (docs/deployment.md).
HTTP_FUNCTIONS = ("generation", "scheduling")
# Stands for the project number in the scheduling URL until deploy.sh (or Terraform) knows it.
PROJECT_NUMBER = "PROJECT_NUMBER"
# rate_limits key -> the env var shared/config.py reads.
RATE_LIMIT_ENV = {
    "window_seconds": "RATE_LIMIT_WINDOW_SECONDS", "generate": "RATE_LIMIT_GENERATE",
    "batch_items": "RATE_LIMIT_BATCH_ITEMS", "schedule": "RATE_LIMIT_SCHEDULE", "read": "RATE_LIMIT_READ",
}
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:@/ -]*$")  # nothing gcloud's comma lists or the shell trip on


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
            "vertex_role_id": f"{prefix.replace('-', '_')}_vertex_caller",
        }

    def scheduling_url_template(self) -> str:
        """The scheduling function's run.app URL with PROJECT_NUMBER still in it (as module.settings)."""
        return f"https://{self.function_name('scheduling')}-{PROJECT_NUMBER}.{self['region']}.run.app"

    def generation_url(self, project_number: str = PROJECT_NUMBER) -> str:
        """The generation function's run.app URL, where download links point."""
        url = f"https://{self.function_name('generation')}-{PROJECT_NUMBER}.{self['region']}.run.app"
        return url.replace(PROJECT_NUMBER, project_number)

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
            "TRACE_EXPORTER": "gcp",
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
            # Links are minted outside requests too (webhooks, results files): on generation's own URL,
            # where /v1/files serves them.
            "DOWNLOAD_BASE_URL": self.generation_url(project_number),
        }
        if fn == "generation":
            # It signs GCS V4 URLs as itself through signBlob (token creator on its own account).
            env["DOWNLOAD_SIGNER_SERVICE_ACCOUNT"] = self.service_account_email("generation")
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
            # Pinned: every instance of every function must hash API keys with the same pepper.
            secrets["API_KEY_PEPPER"] = f"{names['api_key_pepper_secret']}:{int(self['api_key_pepper_version'])}"
        if not self["db_iam_auth"]:
            secrets["DB_PASS"] = f"{names['db_password_secret']}:latest"
        return secrets


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def parse_environment(name: str, values: dict[str, Any]) -> Environment:
    """Apply every rule of infra/modules/settings and derive each function's pool."""
    check_top_level(values)
    functions = check_functions(values)
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
        raise ConfigError(f"{tfvars}: no such file (is '{name}' an environment, infra/environments/{name}.tfvars?)")
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
            at + "ingress": f.ingress, at + "public": "true" if fn in HTTP_FUNCTIONS else "false",
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
