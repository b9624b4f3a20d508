"""./deploy.sh --dry-run: prints every command it would run, runs none, and fails early on bad input."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from shared.config import Settings
from tests.infra.harness import (
    BASH,
    ENVIRONMENTS,
    INFRA,
    DeployRun,
    edited_tfvars,
    env_vars,
    flags,
    load_deploy_config,
    make_fake_bin,
    run_deploy,
    tfvars_file,
)

deploy_config = load_deploy_config()
FUNCTIONS = ("generation", "batch", "scheduling")
# Contract section 3 plus the pool and delivery settings: what a function on Google Cloud needs.
REQUIRED_ENV = {
    "GOOGLE_CLOUD_PROJECT", "GENERATION_BACKEND", "VERTEX_LOCATION", "OUTPUT_BUCKET", "PUBSUB_BATCH_TOPIC",
    "LOG_LEVEL", "INSTANCE_CONNECTION_NAME", "DB_USER", "DB_NAME", "DB_IAM_AUTH", "FUNCTION_CONCURRENCY",
    "DB_POOL_SIZE", "DB_MAX_OVERFLOW", "DB_POOL_TIMEOUT", "DB_CONNECT_TIMEOUT", "MAX_DELIVERY_ATTEMPTS",
}


def dry_run(fake_bin: Path, *args: str) -> DeployRun:
    run = run_deploy(["--dry-run", *args], fake_bin)
    assert run.returncode == 0, run.stderr
    return run


@pytest.fixture(scope="module")
def dev_dry_run(tmp_path_factory: pytest.TempPathFactory) -> DeployRun:
    """One dry run of dev, shared by the tests that only read what it printed."""
    return dry_run(make_fake_bin(tmp_path_factory.mktemp("dev-dry-run")), "--env", "dev")


def deploys(run: DeployRun) -> dict[str, list[str]]:
    """The printed `gcloud functions deploy` commands, keyed by entry point."""
    commands = run.printed("gcloud", "functions", "deploy")
    return {flags(c)["entry-point"]: c for c in commands}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_dry_run_runs_nothing(env: str, fake_bin: Path) -> None:
    run = dry_run(fake_bin, "--env", env)

    assert run.calls == []  # neither gcloud nor make was started, not even for an auth check
    assert run.stdout.strip()


def test_dry_run_prints_one_deploy_per_function_with_every_flag_spelled_out(dev_dry_run: DeployRun) -> None:
    config = deploy_config.load_environment(tfvars_file("dev"), "dev")

    commands = deploys(dev_dry_run)

    assert sorted(commands) == sorted(FUNCTIONS)
    for fn, argv in commands.items():
        f, settings = flags(argv), config.functions[fn]
        assert argv[3] == f"genmedia-dev-{fn}"
        assert "gen2" in f
        assert f["runtime"] in ("python311", "python312")
        assert f["project"] == "genmedia-dev" and f["region"] == config["region"]
        assert Path(f["source"]).name == fn
        assert f["service-account"] == config.service_account_email(fn)
        assert f["build-service-account"].endswith(config.service_account_email("builder"))
        assert f["memory"] == settings.memory and f["cpu"] == settings.cpu
        assert f["timeout"] == f"{settings.timeout_seconds}s"
        assert f["min-instances"] == str(settings.min_instances)
        assert f["max-instances"] == str(settings.max_instances)
        assert f["concurrency"] == str(settings.concurrency)
        assert f["ingress-settings"] == settings.ingress
        if fn == "batch":
            assert "no-allow-unauthenticated" in f and "allow-unauthenticated" not in f
        else:
            assert "allow-unauthenticated" in f and "no-allow-unauthenticated" not in f
        assert REQUIRED_ENV <= set(env_vars(argv))


def test_every_env_var_and_secret_the_dry_run_passes_is_one_the_functions_read(
    dev_dry_run: DeployRun,
) -> None:
    known = {name.upper() for name in Settings.model_fields}

    for fn, argv in deploys(dev_dry_run).items():
        assert set(env_vars(argv)) <= known, fn
        secrets = flags(argv).get("set-secrets", "")
        assert {pair.split("=", 1)[0] for pair in secrets.split(",") if pair} <= known, fn


def test_batch_is_triggered_by_its_topic_with_retries_and_the_http_functions_by_http(
    dev_dry_run: DeployRun,
) -> None:
    commands = deploys(dev_dry_run)

    batch = flags(commands["batch"])
    assert batch["trigger-topic"] == "genmedia-dev-batch"
    assert batch["trigger-service-account"].startswith("genmedia-dev-eventarc@")
    assert "retry" in batch and "trigger-http" not in batch
    assert int(batch["timeout"].removesuffix("s")) <= 540
    for fn in ("generation", "scheduling"):
        http = flags(commands[fn])
        assert "trigger-http" in http
        assert not {"trigger-topic", "trigger-event-filters", "retry"} & set(http)


def test_env_vars_name_the_resources_terraform_creates(dev_dry_run: DeployRun) -> None:
    config = deploy_config.load_environment(tfvars_file("dev"), "dev")
    names = config.names()

    for fn, argv in deploys(dev_dry_run).items():
        env = env_vars(argv)
        assert env["INSTANCE_CONNECTION_NAME"] == names["instance_connection_name"]
        assert env["OUTPUT_BUCKET"] == names["output_bucket"]
        assert env["PUBSUB_BATCH_TOPIC"] == names["batch_topic"]
        assert env["DB_IAM_AUTH"] == "true"
        assert env["DB_USER"] == f"genmedia-dev-{fn}@genmedia-dev.iam"
        assert env["GENERATION_BACKEND"] == "vertex"
        assert env["MAX_DELIVERY_ATTEMPTS"] == str(config["max_delivery_attempts"])
        settings = config.functions[fn]
        assert env["DB_POOL_SIZE"] == str(settings.pool_size)
        assert env["DB_MAX_OVERFLOW"] == str(settings.max_overflow)
        assert "DB_PASS" not in env and "DATABASE_URL" not in env


def test_dry_run_prints_migrations_before_the_first_deploy(dev_dry_run: DeployRun) -> None:
    lines = dev_dry_run.stdout.splitlines()

    migrate = next(i for i, line in enumerate(lines) if line.endswith(" migrate"))
    grants = next(i for i, line in enumerate(lines) if "grant_db_access.py" in line)
    first_deploy = next(i for i, line in enumerate(lines) if line.startswith("gcloud functions deploy"))
    assert migrate < grants < first_deploy
    assert "INSTANCE_CONNECTION_NAME=genmedia-dev:europe-west1:genmedia-dev-pg" in lines[migrate]


def test_dry_run_prints_the_invoker_and_dead_letter_set_up(dev_dry_run: DeployRun) -> None:
    run = dev_dry_run

    added = run.printed("gcloud", "functions", "add-invoker-policy-binding")
    members = {(c[3], flags(c)["member"]) for c in added}
    assert members == {
        ("genmedia-dev-batch", "serviceAccount:genmedia-dev-eventarc@genmedia-dev.iam.gserviceaccount.com"),
        ("genmedia-dev-generation", "allUsers"), ("genmedia-dev-scheduling", "allUsers"),
    }
    assert len(run.printed("gcloud", "run", "services", "get-iam-policy")) == 3
    [update] = run.printed("gcloud", "pubsub", "subscriptions", "update")
    assert flags(update)["max-delivery-attempts"] == "5"
    assert flags(update)["dead-letter-topic"] == "projects/genmedia-dev/topics/genmedia-dev-batch-dead-letter"


def test_dry_run_only_deploys_the_one_function_asked_for(fake_bin: Path) -> None:
    run = dry_run(fake_bin, "--env", "prod", "--only", "scheduling")

    assert list(deploys(run)) == ["scheduling"]
    assert run.printed("gcloud", "pubsub", "subscriptions", "update") == []
    # A producer alone: first the check that batch's subscription dead-letters, before the migrations.
    lines = run.stdout.splitlines()
    check = next(i for i, line in enumerate(lines) if line.startswith("gcloud pubsub subscriptions describe"))
    migrate = next(i for i, line in enumerate(lines) if line.endswith(" migrate"))
    assert check < migrate


@pytest.mark.parametrize(
    ("replacements", "setting"),
    [({"scheduler_time_zone = \"Etc/UTC\"\n": 'scheduler_time_zone = "Etc/UTC"\ninvoker_members = []\n'},
      "invoker_members"),
     ({'ingress = "all"': 'ingress = "all"\n    allow_unauthenticated = false'},
      "functions.generation.allow_unauthenticated")],
)
def test_an_older_tfvars_with_a_removed_setting_is_refused_with_the_reason(
    replacements: dict[str, str], setting: str, tmp_path: Path, fake_bin: Path
) -> None:
    tfvars = edited_tfvars(tmp_path, "dev", replacements)

    run = run_deploy(["--dry-run", "--env", "dev", "--config", str(tfvars)], fake_bin)

    assert run.returncode != 0 and run.stdout == ""
    assert f"{setting}: not a setting (generation and scheduling are public and check API keys" in run.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "staging"], "no such file"),
        (["--only", "billing"], "--only must be generation, batch or scheduling"),
        (["--frobnicate"], "unknown argument '--frobnicate'"),
        (["--env"], "--env needs a value"),
    ],
)
def test_bad_arguments_fail_at_once_with_one_line(args: list[str], message: str, fake_bin: Path) -> None:
    run = run_deploy(["--dry-run", *args], fake_bin)

    assert run.returncode != 0
    assert run.stderr.count("\n") == 1 and message in run.stderr
    assert run.stdout == "" and run.calls == []


@pytest.mark.parametrize(
    ("replacements", "message"),
    [
        ({'region = "europe-west1"\n': ""}, "region: missing"),
        ({"timeout_seconds = 540": "timeout_seconds = 600"}, "functions.batch.timeout_seconds"),
        ({"max_delivery_attempts = 5": "max_delivery_attempts = 3"}, "max_delivery_attempts"),
        ({"db_iam_auth = true": 'db_iam_auth = "yes"'}, "db_iam_auth: must be true or false"),
        ({'cpu = "1"': 'cpu = "9"'}, "functions.generation.cpu: must be a number of vCPUs from more than 0 to 8"),
        ({'cpu = "1"': 'cpu = "0.5"'}, 'functions.generation.cpu: a concurrency above 1 needs cpu of at least "1"'),
        ({"read           = 600": "read           = -1"}, "rate_limits.read: must be a whole number"),
    ],
)
def test_a_bad_setting_fails_at_once_with_one_line(
    replacements: dict[str, str], message: str, tmp_path: Path, fake_bin: Path
) -> None:
    tfvars = edited_tfvars(tmp_path, "dev", replacements)

    run = run_deploy(["--env", "dev", "--config", str(tfvars)], fake_bin)

    assert run.returncode != 0
    assert run.stderr.count("\n") == 1 and message in run.stderr, run.stderr
    assert run.calls == []


def test_a_real_deploy_without_gcloud_fails_at_once_with_one_line(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "env"):
        found = shutil.which(tool)
        assert found
        os.symlink(found, bin_dir / tool)

    run = run_deploy(["--env", "dev"], tmp_path, path=str(bin_dir))

    assert run.returncode != 0
    assert run.stderr == "deploy.sh: gcloud is not installed: https://cloud.google.com/sdk/docs/install\n"


def test_deploy_script_is_strict_bash() -> None:
    script = (INFRA.parent / "deploy.sh").read_text()

    assert script.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in script
    assert BASH
