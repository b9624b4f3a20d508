"""infra/: formatted, parseable, one root for every environment, least privilege, in step with deploy.sh.

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
from tests.infra.harness import ENVIRONMENTS, INFRA, edited_tfvars, load_deploy_config, tfvars_file

deploy_config = load_deploy_config()
TERRAFORM = shutil.which("terraform")
needs_terraform = pytest.mark.skipif(TERRAFORM is None, reason="terraform binary not on PATH: skipping")
HCL_OPTIONS = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
SETTINGS_MODULE = INFRA / "modules" / "settings"
PLATFORM = INFRA / "modules" / "platform"
ROOT_FILES = ("main.tf", "outputs.tf", "variables.tf", "versions.tf")
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
    return load_hcl(tfvars_file(env))


def settings_call() -> str:
    """The root's `module "settings"` block as written in main.tf (terraform fmt puts its brace at column 0)."""
    match = re.search(r'^module "settings" \{\n.*?^\}\n', (INFRA / "main.tf").read_text(), re.M | re.S)
    assert match, "main.tf has no module \"settings\" block"
    return match.group(0)


def terraform(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert TERRAFORM
    rc_file = cwd / "terraformrc"
    rc_file.touch()
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0",
           "TF_CLI_CONFIG_FILE": str(rc_file)}
    return subprocess.run([TERRAFORM, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def settings_root(work: Path) -> Path:
    """An initialised root of the root's variables and its call of the settings module (no providers)."""
    work.mkdir(parents=True)
    shutil.copy(INFRA / "variables.tf", work / "variables.tf")
    settings = settings_call().replace('"./modules/settings"', json.dumps(str(SETTINGS_MODULE)))
    (work / "settings.tf").write_text(settings + '\noutput "settings" {\n  value = module.settings\n}\n')
    init = terraform("init", "-no-color", "-backend=false", cwd=work)
    assert init.returncode == 0, init.stderr
    return work


def evaluate_settings(var_file: Path, work: Path) -> subprocess.CompletedProcess[str]:
    """`terraform apply` of the settings module as the root calls it, for `var_file`."""
    return terraform("apply", "-auto-approve", "-no-color", f"-var-file={var_file}", cwd=settings_root(work))


@needs_terraform
def test_terraform_files_are_formatted() -> None:
    proc = terraform("fmt", "-check", "-recursive", "-diff", "-no-color", str(INFRA), cwd=INFRA.parent)

    assert proc.returncode == 0, f"run `terraform fmt -recursive infra`:\n{proc.stdout}"


def test_every_terraform_file_parses() -> None:
    files = sorted([*INFRA.rglob("*.tf"), *INFRA.rglob("*.tfvars"), *INFRA.rglob("*.tfbackend")])

    assert len(files) > 10
    for path in files:
        assert isinstance(load_hcl(path), dict), path


def test_one_root_module_and_each_environment_is_a_tfvars_and_a_backend_file() -> None:
    assert sorted(p.name for p in INFRA.glob("*.tf")) == sorted(ROOT_FILES)
    environments = INFRA / "environments"
    assert not [p for p in environments.rglob("*") if p.is_dir() or p.suffix == ".tf"]
    assert sorted(p.name for p in environments.iterdir()) == sorted(
        f"{env}.{kind}" for env in ENVIRONMENTS for kind in ("tfvars", "gcs.tfbackend"))
    for env in ENVIRONMENTS:
        backend = load_hcl(environments / f"{env}.gcs.tfbackend")
        assert set(backend) == {"bucket", "prefix"} and backend["prefix"] == f"genmedia/{env}", env
    [terraform_block] = load_hcl(INFRA / "versions.tf")["terraform"]
    assert terraform_block["backend"] == [{"gcs": {}}]  # everything comes from the .gcs.tfbackend file


def test_the_root_passes_every_variable_to_the_settings_module_unchanged() -> None:
    [settings] = [m["settings"] for m in load_hcl(INFRA / "main.tf")["module"] if "settings" in m]
    arguments = {k: v for k, v in settings.items() if k != "source"}

    assert arguments == {name: f"${{var.{name}}}" for name in blocks(INFRA, "variable")}


def test_environment_variables_are_the_settings_module_variables_without_defaults() -> None:
    module = blocks(SETTINGS_MODULE, "variable")
    root = blocks(INFRA, "variable")

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
                                 "concurrency", "ingress"}, fn


@pytest.mark.parametrize("variable", sorted(tfvars("dev")))
def test_deploy_sh_reads_every_setting_the_functions_depend_on(variable: str) -> None:
    values = {k: v for k, v in tfvars("dev").items() if k != variable}

    with pytest.raises(deploy_config.ConfigError, match=f"^{variable}: missing"):
        deploy_config.parse_environment("dev", values)


def test_every_env_var_deploy_sh_sets_is_one_the_functions_read() -> None:
    config = deploy_config.load_environment(tfvars_file("dev"), "dev")
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
    var_file = tfvars_file(env)
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


# One edit per rule of modules/settings: what Terraform says, and what deploy.sh says, about it.
BROKEN_SETTINGS = [
    ({"max_instances = 5\n": "max_instances = 60\n"}, "Pool budget exceeded", "pool budget exceeded in dev"),
    ({"timeout_seconds = 540": "timeout_seconds = 541"}, "must be at most 540", "functions.batch.timeout_seconds"),
    ({"timeout_seconds = 300": "timeout_seconds = 0"}, "functions.*.timeout_seconds must be a whole number",
     "functions.generation.timeout_seconds: must be a whole number from 1 to 3600"),
    ({"max_delivery_attempts = 5": "max_delivery_attempts = 4"}, "from 5 to 100", "max_delivery_attempts"),
    ({"window_seconds = 60": "window_seconds = 0"}, "rate_limits.window_seconds must be a whole number",
     "rate_limits.window_seconds: must be a whole number from 1 to 3600"),
    ({"read           = 600": "read           = -1"}, "rate_limits.generate, batch_items, schedule and read",
     "rate_limits.read: must be a whole number of at least 0"),
    ({'cpu = "1"': 'cpu = "9"'}, "functions.*.cpu must be a number of vCPUs", "functions.generation.cpu: must be"),
    ({'cpu = "1"': 'cpu = "0.5"'}, "a concurrency above 1 needs cpu",
     "functions.generation.cpu: a concurrency above 1"),
    ({'memory = "512Mi"': 'memory = "512MB"'}, "functions.*.memory must be a size", "functions.generation.memory"),
    ({'ingress = "all"': 'ingress = "public"'}, "functions.*.ingress must be", "functions.generation.ingress"),
    ({"concurrency = 8": "concurrency = 0"}, "functions.*.concurrency must be a whole number",
     "functions.generation.concurrency"),
    ({"min_instances = 0": "min_instances = 9"}, "min_instances and max_instances must be",
     "functions.generation.max_instances: must be a whole number of at least 9"),
    ({'ingress = "all"': 'ingress = "all"\n    db_pool_size = 0'}, "db_pool_size must be null or 1-100",
     "functions.generation.db_pool_size"),
    ({"generation = {": "reporting = {"}, "functions must have exactly the keys", "functions: must have exactly"),
    ({"api_key_pepper_version = 1": "api_key_pepper_version = 0"}, "api_key_pepper_version must be a whole number",
     "api_key_pepper_version: must be a whole number of at least 1"),
    ({'project_id = "genmedia-dev"': 'project_id = "Genmedia_Dev"'}, "project_id must be a project ID",
     "project_id: must be a project ID"),
    ({'region = "europe-west1"': 'region = "europe west1"'}, "region must be a Google Cloud region", "region: must be"),
    ({'name_prefix = "genmedia-dev"': 'name_prefix = "genmedia-development-x"'}, "name_prefix must be 4-19",
     "name_prefix: must be 4-19"),
    ({'runtime = "python312"': 'runtime = "python39"'}, "runtime must be python311 or python312", "runtime: must be"),
    ({'log_level = "DEBUG"': 'log_level = "LOUD"'}, "log_level must be one of", "log_level: must be one of"),
    ({'vertex_location = "us-central1"': 'vertex_location = "US_CENTRAL1"'}, "vertex_location must be",
     "vertex_location: must be"),
    ({"notification_channels = []": 'notification_channels = ["email:ops@example.com"]'},
     "notification_channels must each be", "notification_channels: must each be"),
    ({"output_retention_days = 7": "output_retention_days = 0"}, "output_retention_days must be a whole number",
     "output_retention_days: must be a whole number from 1 to 3650"),
    ({'scheduler_cron = "* * * * *"': 'scheduler_cron = "* * *"'}, "scheduler_cron must be a 5-field cron",
     "scheduler_cron: must be a 5-field cron"),
    ({'scheduler_time_zone = "Etc/UTC"': 'scheduler_time_zone = "Etc UTC"'}, "scheduler_time_zone must be an IANA",
     "scheduler_time_zone: must be an IANA"),
    ({'db_tier = "db-custom-1-3840"': 'db_tier = "custom-1-3840"'}, "db_tier must be a Cloud SQL tier",
     "db_tier: must be a Cloud SQL tier"),
    ({'db_version = "POSTGRES_16"': 'db_version = "POSTGRES_9"'}, "db_version must be POSTGRES_15",
     "db_version: must be one of"),
    ({'db_edition = "ENTERPRISE"': 'db_edition = "STANDARD"'}, "db_edition must be ENTERPRISE", "db_edition: must be"),
    ({"db_max_connections = 100": "db_max_connections = 20"}, "db_max_connections must be a whole number",
     "db_max_connections: must be a whole number from 25"),
    ({"db_connection_reserve = 15": "db_connection_reserve = 5"}, "db_connection_reserve must be a whole number",
     "db_connection_reserve: must be a whole number of at least 10"),
    ({'db_availability_type = "ZONAL"': 'db_availability_type = "GLOBAL"'}, "db_availability_type must be ZONAL",
     "db_availability_type: must be one of"),
    ({"db_disk_size_gb = 10": "db_disk_size_gb = 5"}, "db_disk_size_gb must be a whole number",
     "db_disk_size_gb: must be a whole number of at least 10"),
    ({"db_pool_timeout_seconds = 5": "db_pool_timeout_seconds = 0"}, "db_pool_timeout_seconds must be more than 0",
     "db_pool_timeout_seconds: must be more than 0"),
    ({"db_connect_timeout_seconds = 10": "db_connect_timeout_seconds = 500"},
     "db_connect_timeout_seconds must be more than 0", "db_connect_timeout_seconds: must be more than 0"),
]


@pytest.fixture(scope="module")
def initialised_settings_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return settings_root(tmp_path_factory.mktemp("broken-settings") / "root")


@needs_terraform
@pytest.mark.parametrize(("replacements", "terraform_says", "deploy_says"), BROKEN_SETTINGS)
def test_terraform_and_deploy_sh_refuse_the_same_broken_settings(
    replacements: dict[str, str], terraform_says: str, deploy_says: str, tmp_path: Path,
    initialised_settings_root: Path,
) -> None:
    var_file = edited_tfvars(tmp_path, "dev", replacements)

    planned = terraform("plan", "-no-color", f"-var-file={var_file}", cwd=initialised_settings_root)
    assert planned.returncode != 0
    assert terraform_says in re.sub(r"\s+", " ", planned.stderr), planned.stderr
    with pytest.raises(deploy_config.ConfigError, match=re.escape(deploy_says)):
        deploy_config.load_environment(var_file, "dev")


def test_every_rule_of_the_settings_module_is_broken_once_above() -> None:
    messages = [re.sub(r"\s+", " ", v["error_message"]) for spec in blocks(SETTINGS_MODULE, "variable").values()
                for v in spec.get("validation", [])]
    budget = blocks(SETTINGS_MODULE, "output")["functions"]["precondition"]
    messages += [re.sub(r"\s+", " ", c["error_message"]) for c in budget]

    for message in messages:
        assert any(says in message for _, says, _ in BROKEN_SETTINGS), f"no case breaks: {message}"


def test_no_output_or_variable_carries_a_generated_secret() -> None:
    for directory in [SETTINGS_MODULE, PLATFORM, INFRA]:
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
    assert project_roles == {
        "${each.value.role}", "${google_project_iam_custom_role.vertex_caller.name}", "roles/cloudbuild.builds.builder",
        "roles/cloudtrace.agent",  # writes spans, nothing else: TRACE_EXPORTER=gcp
    }
    [vertex_role] = resources(PLATFORM, "google_project_iam_custom_role").values()
    assert vertex_role["permissions"] == ["aiplatform.endpoints.predict"]  # not roles/aiplatform.user
    iam_text = (PLATFORM / "iam.tf").read_text()
    assert '"roles/cloudsql.client"' in iam_text and '"roles/cloudsql.instanceUser"' in iam_text
    publishers = resources(PLATFORM, "google_pubsub_topic_iam_member")
    assert publishers["batch_publishers"]["for_each"] == '${toset(["generation", "scheduling"])}'
    assert publishers["batch_publishers"]["topic"] == "${google_pubsub_topic.batch.name}"
    bucket_grants = resources(PLATFORM, "google_storage_bucket_iam_member")
    assert {name: g["role"] for name, g in bucket_grants.items()} == {
        "runtime": "roles/storage.objectUser", "vertex_agent": "${each.value}",
    }
    assert bucket_grants["vertex_agent"]["for_each"] == (
        '${toset(["roles/storage.objectCreator", "roles/storage.objectViewer"])}')
    assert {g["bucket"] for g in bucket_grants.values()} == {"${google_storage_bucket.outputs.name}"}
    secret_grants = resources(PLATFORM, "google_secret_manager_secret_iam_member")
    assert {name: g["secret_id"] for name, g in secret_grants.items()} == {
        "runtime": "${google_secret_manager_secret.db_password.secret_id}",
        "api_key_pepper": "${google_secret_manager_secret.api_key_pepper.secret_id}",
    }
    assert {g["role"] for g in secret_grants.values()} == {"roles/secretmanager.secretAccessor"}
    for path in INFRA.rglob("*.tf"):
        text = path.read_text()
        assert not re.search(r'"(allUsers|allAuthenticatedUsers)"', text), path
        assert not re.search(r'"roles/(owner|editor|aiplatform\.user|storage\.objectAdmin)"', text), path


def test_the_generation_function_may_sign_urls_as_itself_and_as_no_other_account() -> None:
    grants = resources(PLATFORM, "google_service_account_iam_member")
    token_creators = {name: g for name, g in grants.items() if g["role"] == "roles/iam.serviceAccountTokenCreator"}

    signer = token_creators["generation_signs_as_itself"]
    assert signer["service_account_id"] == '${google_service_account.this["generation"].name}'
    assert signer["member"] == 'serviceAccount:${google_service_account.this["generation"].email}'
    # The only other token creator: Pub/Sub's agent, signing push tokens as the Eventarc identity.
    assert set(token_creators) == {"generation_signs_as_itself", "pubsub_signs_for_eventarc"}
    assert token_creators["pubsub_signs_for_eventarc"]["member"] == "${local.pubsub_service_agent}"
    project_roles = [r["role"] for r in resources(PLATFORM, "google_project_iam_member").values()]
    assert "roles/iam.serviceAccountTokenCreator" not in project_roles
    [apis] = load_hcl(PLATFORM / "apis.tf")["locals"]
    assert "iamcredentials.googleapis.com" in apis["services"]


def test_service_agents_are_created_before_they_are_granted_anything() -> None:
    [identity] = resources(PLATFORM, "google_project_service_identity").values()
    assert identity["provider"] == "google-beta"
    assert identity["for_each"] == '${toset(["aiplatform", "pubsub"])}'
    vertex = resources(PLATFORM, "google_storage_bucket_iam_member")["vertex_agent"]
    assert vertex["member"] == 'serviceAccount:${google_project_service_identity.agents["aiplatform"].email}'
    [iam_locals] = load_hcl(PLATFORM / "iam.tf")["locals"]
    assert iam_locals["pubsub_service_agent"] == (
        'serviceAccount:${google_project_service_identity.agents["pubsub"].email}')
    for path in PLATFORM.glob("*.tf"):
        assert "@gcp-sa-" not in path.read_text(), f"{path.name} spells a service agent's email by hand"


def test_terraform_destroy_can_remove_database_users_that_were_granted_roles() -> None:
    users = resources(PLATFORM, "google_sql_user")

    assert {name: u.get("deletion_policy") for name, u in users.items()} == {"owner": "ABANDON", "runtime": "ABANDON"}


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
    assert actions == ["Delete", "AbortIncompleteMultipartUpload", "Delete"]
    uploads = bucket["lifecycle_rule"][2]["condition"][0]
    assert uploads["matches_prefix"] == ["uploads/"] and uploads["age"] == 2  # input pictures expire
    # Outputs the lifecycle rule deletes are gone, not kept (and billed) another 7 days.
    assert bucket["soft_delete_policy"] == [{"retention_duration_seconds": 0}]


def test_every_function_mints_download_links_on_the_generation_functions_url() -> None:
    config = deploy_config.load_environment(tfvars_file("dev"), "dev")
    envs = {fn: config.function_env(fn, project_number="123456") for fn in ("generation", "batch", "scheduling")}
    assert {env["DOWNLOAD_BASE_URL"] for env in envs.values()} == {
        "https://genmedia-dev-generation-123456.europe-west1.run.app"}
    assert envs["generation"]["DOWNLOAD_SIGNER_SERVICE_ACCOUNT"] == config.service_account_email("generation")
