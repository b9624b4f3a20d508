"""API-key auth and Cloud Scheduler's OIDC token in the deployment.

- API_KEY_PEPPER comes from the Secret Manager secret Terraform generates, as a `--set-secrets`
  reference: never a value on a command line, never read by deploy.sh, and readable only by the
  functions that get it, which are exactly those that refuse to start without it.
- SCHEDULER_AUDIENCE and SCHEDULER_SERVICE_ACCOUNT, which :tick checks, are what Terraform's Cloud
  Scheduler job puts in its OIDC token: both sides derive them from the same template and account.
- The scheduling function is public (Cloud Run would strip the token's signature behind IAM).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra.harness import (
    ENVIRONMENTS,
    FAKE_API_KEY_PEPPER,
    FAKE_DB_PASSWORD,
    FAKE_PROJECT_NUMBER,
    INFRA,
    ROOT,
    DeployRun,
    edited_tfvars,
    env_vars,
    flags,
    load_deploy_config,
    make_fake_bin,
    run_deploy,
    tfvars_file,
)
from tests.infra.test_terraform import (
    PLATFORM,
    TERRAFORM,
    evaluate_settings,
    load_hcl,
    needs_terraform,
    resources,
    terraform,
)

deploy_config = load_deploy_config()
FUNCTIONS = ("generation", "batch", "scheduling")


def commands(run: DeployRun, *words: str) -> list[list[str]]:
    """gcloud calls starting with `words`: recorded by the fake, or printed by a dry run."""
    return run.gcloud(*words) or [argv[1:] for argv in run.printed("gcloud", *words)]


def deployed(run: DeployRun) -> dict[str, list[str]]:
    return {flags(argv)["entry-point"]: argv for argv in commands(run, "functions", "deploy")}


def password_mode_tfvars(tmp: Path, env: str = "dev") -> Path:
    return edited_tfvars(tmp, env, {"db_iam_auth = true": "db_iam_auth = false"})


def secrets_of(argv: list[str]) -> dict[str, str]:
    raw = flags(argv).get("set-secrets", "")
    return dict(pair.split("=", 1) for pair in raw.split(",") if pair)


@pytest.fixture(scope="module", params=["iam-dry-run", "password"])
def full_deploy(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> DeployRun:
    """All of dev in each database auth mode: a real run against the fakes with the owner's password,
    and a dry run with IAM database auth (a real one would grant on a real database, see
    test_deploy_for_real.py, which runs both modes against the embedded PostgreSQL)."""
    tmp = tmp_path_factory.mktemp(f"auth-{request.param}")
    if request.param == "password":
        args = ["--env", "dev", "--config", str(password_mode_tfvars(tmp))]
    else:
        args = ["--dry-run", "--env", "dev"]
    run = run_deploy(args, make_fake_bin(tmp))
    assert run.returncode == 0, run.stderr
    return run


@pytest.fixture(scope="module")
def terraform_settings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """module.settings of every environment, evaluated by terraform (empty without the binary)."""
    if TERRAFORM is None:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for env in ENVIRONMENTS:
        root = tmp_path_factory.mktemp(f"settings-{env}") / "root"
        applied = evaluate_settings(tfvars_file(env), root)
        assert applied.returncode == 0, applied.stderr
        output = terraform("output", "-json", "settings", cwd=root)
        out[env] = {"root": root, **json.loads(output.stdout)}
    return out


# --- API_KEY_PEPPER -------------------------------------------------------------------------------


def test_the_pepper_reaches_the_functions_as_a_secret_reference_in_every_db_auth_mode(
    full_deploy: DeployRun,
) -> None:
    deploys = deployed(full_deploy)

    assert sorted(deploys) == sorted(FUNCTIONS)
    for fn, argv in deploys.items():
        secrets = secrets_of(argv)
        if fn in deploy_config.API_KEY_PEPPER_FUNCTIONS:
            # Pinned (api_key_pepper_version), never :latest: every instance hashes with one pepper.
            assert secrets["API_KEY_PEPPER"] == "genmedia-dev-api-key-pepper:1", fn
        else:
            assert "API_KEY_PEPPER" not in secrets, fn
        assert "API_KEY_PEPPER" not in env_vars(argv), fn
    assert {"generation", "scheduling"} <= set(deploy_config.API_KEY_PEPPER_FUNCTIONS)


def test_deploy_sh_never_reads_the_pepper_and_no_secret_value_reaches_a_command_line(
    full_deploy: DeployRun,
) -> None:
    accessed = [flags(argv).get("secret") for argv in commands(full_deploy, "secrets", "versions", "access")]
    assert "genmedia-dev-api-key-pepper" not in accessed
    assert accessed == ["genmedia-dev-db-password"]  # the migrations' owner password, into their env only
    every_argv = [arg for call in full_deploy.calls for arg in call["argv"]]
    every_argv += [arg for line in full_deploy.printed() for arg in line]
    for value in (FAKE_API_KEY_PEPPER, FAKE_DB_PASSWORD):
        assert not [arg for arg in every_argv if value in arg]
        assert value not in full_deploy.stdout + full_deploy.stderr
    assert not [c for c in full_deploy.calls if FAKE_API_KEY_PEPPER in json.dumps(c.get("env", {}))]
    # API_KEY_PEPPER= only ever appears as a reference to the secret, in --set-secrets.
    mentions = [arg for arg in every_argv if "API_KEY_PEPPER=" in arg]
    assert mentions and all(arg.startswith("--set-secrets=") for arg in mentions)


def test_the_pepper_goes_to_exactly_the_functions_that_refuse_to_start_without_it() -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("API_KEY_PEPPER", "INSTANCE_CONNECTION_NAME", "PYTHONPATH")}
    env.update({"GENERATION_BACKEND": "local", "PYTHONDONTWRITEBYTECODE": "1",
                "DATABASE_URL": "postgresql+pg8000://nobody@127.0.0.1:9/none"})
    procs = {fn: subprocess.Popen([sys.executable, "-c", f"import functions.{fn}.main"], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for fn in FUNCTIONS}
    needs = set()
    for fn, proc in procs.items():
        _, stderr = proc.communicate(timeout=60)
        if proc.returncode != 0:
            assert "API_KEY_PEPPER" in stderr, f"{fn} failed to start for another reason:\n{stderr[-2000:]}"
            needs.add(fn)

    # If this fails after a change to shared/config.py, change the list in infra/modules/settings
    # (api_key_pepper_functions) and infra/scripts/deploy_config.py (API_KEY_PEPPER_FUNCTIONS).
    assert needs == set(deploy_config.API_KEY_PEPPER_FUNCTIONS)
    assert {"generation", "scheduling"} <= needs


@needs_terraform
def test_only_the_functions_that_get_the_pepper_may_read_its_secret(
    terraform_settings: dict[str, dict[str, Any]],
) -> None:
    for settings in terraform_settings.values():
        assert settings["api_key_pepper_functions"] == list(deploy_config.API_KEY_PEPPER_FUNCTIONS)
        assert settings["names"]["api_key_pepper_secret"].endswith("-api-key-pepper")
    grant = resources(PLATFORM, "google_secret_manager_secret_iam_member")["api_key_pepper"]
    assert grant["for_each"] == "${toset(var.api_key_pepper_functions)}"
    assert grant["role"] == "roles/secretmanager.secretAccessor"
    assert grant["member"] == "serviceAccount:${google_service_account.this[each.key].email}"
    [platform] = [m["platform"] for m in load_hcl(INFRA / "main.tf")["module"] if "platform" in m]
    assert platform["api_key_pepper_functions"] == "${module.settings.api_key_pepper_functions}"
    # The secret holds a generated value nobody chose: long, and never a variable or an output.
    assert resources(PLATFORM, "random_password")["api_key_pepper"]["length"] >= 48
    secret = resources(PLATFORM, "google_secret_manager_secret")["api_key_pepper"]
    assert secret["secret_id"] == "${var.names.api_key_pepper_secret}"


# --- Cloud Scheduler's OIDC token -----------------------------------------------------------------


def test_the_scheduler_job_states_its_audience_and_posts_the_tick_under_it() -> None:
    [job] = resources(PLATFORM, "google_cloud_scheduler_job").values()
    [target] = job["http_target"]
    [oidc] = target["oidc_token"]

    assert oidc["audience"] == "${local.scheduling_url}"
    assert target["uri"] == "${local.scheduling_url}/v1/schedules:tick"
    assert oidc["service_account_email"] == '${google_service_account.this["scheduler"].email}'


@needs_terraform
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_scheduler_audience_and_account_agree_between_terraform_and_deploy_sh(
    env: str, terraform_settings: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    config = deploy_config.load_environment(tfvars_file(env), env)
    settings = terraform_settings[env]
    assert settings["scheduler"]["url_template"] == config.scheduling_url_template()
    assert settings["scheduler"]["service_account_email"] == config.service_account_email("scheduler")
    assert settings["service_account_emails"]["scheduler"] == config.service_account_email("scheduler")

    # The platform's own expression, evaluated by terraform for the project number the fake reports.
    [locals_block] = load_hcl(PLATFORM / "scheduler.tf")["locals"]
    expression = locals_block["scheduling_url"].removeprefix("${").removesuffix("}")
    assert "var.scheduler.url_template" in expression and "data.google_project.this.number" in expression
    expression = expression.replace("var.scheduler", "module.settings.scheduler").replace(
        "data.google_project.this.number", json.dumps(FAKE_PROJECT_NUMBER))
    console = subprocess.run(
        [str(TERRAFORM), "console", f"-var-file={tfvars_file(env)}"], cwd=settings["root"],
        input=expression + "\n", capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "CHECKPOINT_DISABLE": "1",
             "TF_CLI_CONFIG_FILE": str(settings["root"] / "terraformrc")},
    )
    assert console.returncode == 0, console.stderr
    terraform_audience = json.loads(console.stdout.strip())
    assert terraform_audience == f"https://genmedia-{env}-scheduling-{FAKE_PROJECT_NUMBER}.europe-west1.run.app"

    # What deploy.sh really passes to the scheduling function, with the number gcloud answered.
    tfvars = password_mode_tfvars(tmp_path, env)  # a real IAM-mode run would grant on a real database
    run = run_deploy(["--env", env, "--only", "scheduling", "--config", str(tfvars)], make_fake_bin(tmp_path))
    assert run.returncode == 0, run.stderr
    [describe] = run.gcloud("projects", "describe")  # asked once, for the project of this environment
    assert describe[2] == config["project_id"]
    env_of_scheduling = env_vars(deployed(run)["scheduling"])
    assert env_of_scheduling["SCHEDULER_AUDIENCE"] == terraform_audience
    assert env_of_scheduling["SCHEDULER_SERVICE_ACCOUNT"] == settings["scheduler"]["service_account_email"]


def test_only_scheduling_gets_the_scheduler_settings_with_the_project_number_in_its_audience(
    full_deploy: DeployRun,
) -> None:
    for fn, argv in deployed(full_deploy).items():
        wanted = {"SCHEDULER_AUDIENCE", "SCHEDULER_SERVICE_ACCOUNT"}
        assert wanted & set(env_vars(argv)) == (wanted if fn == "scheduling" else set()), fn
    audience = env_vars(deployed(full_deploy)["scheduling"])["SCHEDULER_AUDIENCE"]
    if full_deploy.calls:  # a real run puts in the number gcloud answered
        assert audience == f"https://genmedia-dev-scheduling-{FAKE_PROJECT_NUMBER}.europe-west1.run.app"
    else:  # a dry run looks nothing up and shows where it goes
        assert audience == "https://genmedia-dev-scheduling-PROJECT_NUMBER.europe-west1.run.app"


def test_generation_and_scheduling_are_public_and_batch_is_not(full_deploy: DeployRun) -> None:
    deploys = deployed(full_deploy)

    # Both check API keys themselves; generation's download and upload URLs take no credentials.
    assert "allow-unauthenticated" in flags(deploys["scheduling"])
    assert "allow-unauthenticated" in flags(deploys["generation"])
    assert "no-allow-unauthenticated" in flags(deploys["batch"])


def test_a_project_number_gcloud_cannot_give_stops_the_deploy_before_any_change(tmp_path: Path) -> None:
    fake_bin = make_fake_bin(tmp_path)
    gcloud = fake_bin / "gcloud"
    gcloud.write_text(gcloud.read_text().replace('"123456789012"', '""'))

    run = run_deploy(["--env", "dev", "--only", "scheduling"], fake_bin)

    assert run.returncode != 0
    assert "could not read the number of project genmedia-dev" in run.stderr
    assert run.gcloud("functions") == [] and not [c for c in run.calls if c["tool"] == "make"]


# --- Rate limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_rate_limits_come_from_the_tfvars_and_reach_both_http_functions_alike(env: str) -> None:
    config = deploy_config.load_environment(tfvars_file(env), env)
    limits = config["rate_limits"]

    expected = {name: str(limits[key]) for key, name in deploy_config.RATE_LIMIT_ENV.items()}
    for fn in FUNCTIONS:
        got = {k: v for k, v in config.function_env(fn).items() if k.startswith("RATE_LIMIT_")}
        assert got == (expected if fn in ("generation", "scheduling") else {}), fn

