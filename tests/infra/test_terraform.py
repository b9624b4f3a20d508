"""infra/: formatted, parseable, one definition per environment, least privilege, and in step with deploy.sh.

Providers cannot be downloaded here, so `terraform validate` is out of reach; instead the HCL is parsed
with python-hcl2, and the provider-free settings module (validation, names, pool budget) is evaluated
by the real terraform binary and compared with infra/scripts/deploy_config.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

from shared.config import Settings
from tests.infra.harness import ENVIRONMENTS, INFRA, edited_tfvars, load_deploy_config

deploy_config = load_deploy_config()
TERRAFORM = shutil.which("terraform")
needs_terraform = pytest.mark.skipif(TERRAFORM is None, reason="terraform binary not on PATH: skipping")
HCL_OPTIONS = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
SETTINGS_MODULE = INFRA / "modules" / "settings"
PLATFORM = INFRA / "modules" / "platform"
SHARED_ROOT_FILES = ("main.tf", "settings.tf", "variables.tf", "outputs.tf")
# Settings only Terraform uses (the platform); every other variable is read by deploy.sh too.
TERRAFORM_ONLY = {
    "db_tier", "db_version", "db_edition", "db_availability_type", "db_deletion_protection",
    "db_disk_size_gb", "output_retention_days", "scheduler_cron", "scheduler_time_zone",
}
# Every secret the platform generates: Secret Manager secret and version resources, by resource name.
GENERATED_SECRETS = {"db_password": "db_owner", "api_key_pepper": "api_key_pepper"}


def load_hcl(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return hcl2.load(handle, serialization_options=HCL_OPTIONS)


def blocks(directory: Path, kind: str) -> dict[str, Any]:
    """Every `kind` block (variable, output, ...) of a module, by name."""
    found: dict[str, Any] = {}
    for path in sorted(directory.glob("*.tf")):
        for entry in load_hcl(path).get(kind, []):
            found.update(entry)
    return found


def resources(directory: Path, kind: str) -> dict[str, dict[str, Any]]:
    """The resources of one type in a module, by name."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        for entry in load_hcl(path).get("resource", []):
            found.update(entry.get(kind, {}))
    return found


def tfvars(env: str) -> dict[str, Any]:
    return load_hcl(INFRA / "environments" / env / "terraform.tfvars")


def terraform(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert TERRAFORM
    rc_file = cwd / "terraformrc"
    rc_file.touch()
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0",
           "TF_CLI_CONFIG_FILE": str(rc_file)}
    return subprocess.run([TERRAFORM, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def evaluate_settings(var_file: Path, work: Path) -> subprocess.CompletedProcess[str]:
    """`terraform apply` of a root made of the environment's variables and its settings module only."""
    work.mkdir(parents=True)
    env_dir = INFRA / "environments" / "dev"
    shutil.copy(env_dir / "variables.tf", work / "variables.tf")
    source = json.dumps(str(SETTINGS_MODULE))
    settings = (env_dir / "settings.tf").read_text().replace('"../../modules/settings"', source)
    (work / "settings.tf").write_text(settings + '\noutput "settings" {\n  value = module.settings\n}\n')
    init = terraform("init", "-no-color", "-backend=false", cwd=work)
    assert init.returncode == 0, init.stderr
    return terraform("apply", "-auto-approve", "-no-color", f"-var-file={var_file}", cwd=work)


@needs_terraform
def test_terraform_files_are_formatted() -> None:
    proc = terraform("fmt", "-check", "-recursive", "-diff", "-no-color", str(INFRA), cwd=INFRA.parent)

    assert proc.returncode == 0, f"run `terraform fmt -recursive infra`:\n{proc.stdout}"


def test_every_terraform_file_parses() -> None:
    files = sorted([*INFRA.rglob("*.tf"), *INFRA.rglob("*.tfvars")])

    assert len(files) > 10
    for path in files:
        assert isinstance(load_hcl(path), dict), path


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environments_differ_only_in_their_tfvars_and_state_prefix(env: str) -> None:
    dev, here = INFRA / "environments" / "dev", INFRA / "environments" / env

    for name in SHARED_ROOT_FILES:
        assert (here / name).read_text() == (dev / name).read_text(), f"{env}/{name} differs from dev/{name}"
    dev_versions = (dev / "versions.tf").read_text()
    assert (here / "versions.tf").read_text() == dev_versions.replace("genmedia/dev", f"genmedia/{env}")
    assert sorted(p.name for p in here.iterdir() if not p.name.startswith(".")) == sorted(
        [*SHARED_ROOT_FILES, "versions.tf", "terraform.tfvars"]
    )


def test_environment_variables_are_the_settings_module_variables_without_defaults() -> None:
    module = blocks(SETTINGS_MODULE, "variable")
    root = blocks(INFRA / "environments" / "dev", "variable")

    assert sorted(root) == sorted(module)
    for name, spec in root.items():
        assert spec["type"] == module[name]["type"], name
        assert "default" not in spec and "default" not in module[name], f"{name} has a default"


def test_settings_variables_have_types_descriptions_and_validation() -> None:
    for name, spec in blocks(SETTINGS_MODULE, "variable").items():
        assert spec.get("type") and spec.get("description"), name
        if spec["type"] not in ("bool", "${bool}"):
            assert spec.get("validation"), f"{name} has no validation block"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_tfvars_state_every_variable_and_nothing_else(env: str) -> None:
    declared = set(blocks(SETTINGS_MODULE, "variable"))

    assert set(tfvars(env)) == declared
    for fn, settings in tfvars(env)["functions"].items():
        assert set(settings) >= {"memory", "cpu", "timeout_seconds", "min_instances", "max_instances",
                                 "concurrency", "ingress", "allow_unauthenticated"}, fn


@pytest.mark.parametrize("variable", sorted(set(tfvars("dev")) - TERRAFORM_ONLY))
def test_deploy_sh_reads_every_setting_the_functions_depend_on(variable: str) -> None:
    values = {k: v for k, v in tfvars("dev").items() if k != variable}

    with pytest.raises(deploy_config.ConfigError, match=f"^{variable}: missing"):
        deploy_config.parse_environment("dev", values)


def test_every_env_var_deploy_sh_sets_is_one_the_functions_read() -> None:
    config = deploy_config.load_environment(INFRA / "environments" / "dev" / "terraform.tfvars", "dev")
    known = {name.upper() for name in Settings.model_fields}

    password_mode = deploy_config.parse_environment("dev", dict(config.values, db_iam_auth=False))
    for fn in ("generation", "batch", "scheduling"):
        pepper = {"API_KEY_PEPPER"} if fn in deploy_config.API_KEY_PEPPER_FUNCTIONS else set()
        for mode in (config, password_mode):
            assert set(mode.function_env(fn)) <= known, fn
            assert set(mode.function_secrets(fn)) <= known, fn
            # A secret is never a plain env var.
            assert not set(mode.function_env(fn)) & set(mode.function_secrets(fn)), fn
        assert set(config.function_secrets(fn)) == pepper, fn
        assert set(password_mode.function_secrets(fn)) == pepper | {"DB_PASS"}, fn


@needs_terraform
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_terraform_derives_the_same_names_pools_and_budget_as_deploy_sh(env: str, tmp_path: Path) -> None:
    var_file = INFRA / "environments" / env / "terraform.tfvars"
    applied = evaluate_settings(var_file, tmp_path / "root")
    assert applied.returncode == 0, applied.stderr
    output = terraform("output", "-json", "settings", cwd=tmp_path / "root")
    settings = json.loads(output.stdout)
    config = deploy_config.load_environment(var_file, env)

    assert settings["names"] == config.names()
    roles = deploy_config.SERVICE_ACCOUNT_ROLES
    assert settings["service_account_emails"] == {r: config.service_account_email(r) for r in roles}
    for fn, f in config.functions.items():
        tf = settings["functions"][fn]
        assert (tf["name"], tf["service_account"], tf["db_user"]) == (
            config.function_name(fn), config.service_account_email(fn), config.db_user(fn),
        )
        assert (tf["pool_size"], tf["max_overflow"]) == (f.pool_size, f.max_overflow), fn
    total, available = config.pool_budget()
    budget = settings["pool_budget"]
    assert (budget["total_connections"], budget["available"]) == (total, available)


@needs_terraform
@pytest.mark.parametrize(
    ("replacements", "terraform_says", "deploy_says"),
    [
        ({"max_instances = 5\n": "max_instances = 60\n"}, "Pool budget exceeded",
         "pool budget exceeded in dev"),
        ({"timeout_seconds = 540": "timeout_seconds = 541"}, "must be at most 540",
         "functions.batch.timeout_seconds"),
        ({"max_delivery_attempts = 5": "max_delivery_attempts = 4"}, "from 5 to 100",
         "max_delivery_attempts"),
        ({"allow_unauthenticated = true": "allow_unauthenticated = false"},  # scheduling's
         "functions.scheduling.allow_unauthenticated must be true",
         "functions.scheduling.allow_unauthenticated: must be true"),
        ({"window_seconds = 60": "window_seconds = 0"}, "rate_limits.window_seconds must be a whole number",
         "rate_limits.window_seconds: must be a whole number from 1 to 3600"),
    ],
)
def test_terraform_and_deploy_sh_refuse_the_same_broken_settings(
    replacements: dict[str, str], terraform_says: str, deploy_says: str, tmp_path: Path
) -> None:
    var_file = edited_tfvars(tmp_path, "dev", replacements)

    applied = evaluate_settings(var_file, tmp_path / "root")
    assert applied.returncode != 0
    assert terraform_says in re.sub(r"\s+", " ", applied.stderr)
    with pytest.raises(deploy_config.ConfigError, match=re.escape(deploy_says)):
        deploy_config.load_environment(var_file, "dev")


def test_no_output_or_variable_carries_a_generated_secret() -> None:
    for directory in [SETTINGS_MODULE, PLATFORM, INFRA / "environments" / "dev"]:
        for name, spec in blocks(directory, "output").items():
            value = json.dumps(spec["value"])
            pattern = r"random_password|secret_data|secret_version|\.password\b|\.result\b"
            assert not re.search(pattern, value), name
        for name, spec in blocks(directory, "variable").items():
            assert not re.search(r"password|secret|pepper$", name) and "default" not in spec, name
    versions = resources(PLATFORM, "google_secret_manager_secret_version")
    assert set(versions) == set(GENERATED_SECRETS)
    for secret, password in GENERATED_SECRETS.items():
        reference = f"random_password.{password}.result"
        uses = [p.name for p in PLATFORM.glob("*.tf") if reference in p.read_text()]
        assert len(uses) == 1, password  # the file of its secret version (and, for the owner, its SQL user)
        assert versions[secret]["secret_data"] == f"${{random_password.{password}.result}}"
        assert versions[secret]["secret"] == f"${{google_secret_manager_secret.{secret}.id}}"


def test_database_has_a_max_connections_flag_from_the_settings() -> None:
    [instance] = resources(PLATFORM, "google_sql_database_instance").values()
    [settings] = instance["settings"]

    flags = {f["name"]: f["value"] for f in settings["database_flags"]}
    assert flags["max_connections"] == "${tostring(var.database.max_connections)}"
    assert settings["edition"] == "${var.database.edition}"


def test_roles_are_least_privilege_and_nothing_is_public() -> None:
    project_roles = {r["role"] for r in resources(PLATFORM, "google_project_iam_member").values()}
    assert project_roles == {"${each.value.role}", "roles/aiplatform.user", "roles/cloudbuild.builds.builder"}
    iam_text = (PLATFORM / "iam.tf").read_text()
    assert '"roles/cloudsql.client"' in iam_text and '"roles/cloudsql.instanceUser"' in iam_text
    publishers = resources(PLATFORM, "google_pubsub_topic_iam_member")
    assert publishers["batch_publishers"]["for_each"] == '${toset(["generation", "scheduling"])}'
    assert publishers["batch_publishers"]["topic"] == "${google_pubsub_topic.batch.name}"
    [bucket_grant] = resources(PLATFORM, "google_storage_bucket_iam_member").values()
    assert bucket_grant["role"] == "roles/storage.objectAdmin"
    assert bucket_grant["bucket"] == "${google_storage_bucket.outputs.name}"
    secret_grants = resources(PLATFORM, "google_secret_manager_secret_iam_member")
    assert {name: g["secret_id"] for name, g in secret_grants.items()} == {
        "runtime": "${google_secret_manager_secret.db_password.secret_id}",
        "api_key_pepper": "${google_secret_manager_secret.api_key_pepper.secret_id}",
    }
    assert {g["role"] for g in secret_grants.values()} == {"roles/secretmanager.secretAccessor"}
    for path in INFRA.rglob("*.tf"):
        text = path.read_text()
        assert not re.search(r'"(allUsers|allAuthenticatedUsers)"', text), path
        assert not re.search(r"roles/(owner|editor)\b", text), path


def test_dead_letter_topic_and_subscription_exist_for_the_batch_topic() -> None:
    topics = resources(PLATFORM, "google_pubsub_topic")
    assert topics["batch"]["name"] == "${var.names.batch_topic}"
    assert topics["dead_letter"]["name"] == "${var.names.dead_letter_topic}"
    [subscription] = resources(PLATFORM, "google_pubsub_subscription").values()
    assert subscription["topic"] == "${google_pubsub_topic.dead_letter.id}"


def test_scheduler_posts_the_tick_every_minute_with_an_oidc_token() -> None:
    [job] = resources(PLATFORM, "google_cloud_scheduler_job").values()
    [target] = job["http_target"]

    assert target["http_method"] == "POST"
    assert target["uri"].endswith("/v1/schedules:tick")
    [oidc] = target["oidc_token"]
    assert oidc["service_account_email"] == '${google_service_account.this["scheduler"].email}'
    for env in ENVIRONMENTS:
        assert tfvars(env)["scheduler_cron"] == "* * * * *"


def test_output_bucket_is_private_with_lifecycle_rules() -> None:
    [bucket] = resources(PLATFORM, "google_storage_bucket").values()

    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    actions = [rule["action"][0]["type"] for rule in bucket["lifecycle_rule"]]
    assert actions == ["Delete", "AbortIncompleteMultipartUpload"]
