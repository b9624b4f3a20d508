"""deploy.sh for real, against fake gcloud and make: what it runs, in what order, what it never shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.harness import (
    FAKE_DB_PASSWORD,
    ROOT,
    DeployRun,
    edited_tfvars,
    env_vars,
    flags,
    make_fake_bin,
    run_deploy,
)

FUNCTIONS = ("generation", "batch", "scheduling")
SUBSCRIPTION = "projects/genmedia-dev/subscriptions/eventarc-europe-west1-batch-123456-sub-789"


@pytest.fixture(scope="module")
def password_mode(tmp_path_factory: pytest.TempPathFactory) -> DeployRun:
    """A full deploy of dev with DB_IAM_AUTH off: the owner's password comes from Secret Manager."""
    tmp = tmp_path_factory.mktemp("password-mode")
    tfvars = edited_tfvars(tmp, "dev", {"db_iam_auth = true": "db_iam_auth = false"})
    run = run_deploy(["--env", "dev", "--config", str(tfvars)], make_fake_bin(tmp))
    assert run.returncode == 0, run.stderr
    return run


def deployed(run: DeployRun) -> dict[str, list[str]]:
    return {flags(argv)["entry-point"]: argv for argv in run.gcloud("functions", "deploy")}


def test_deploy_records_the_three_functions_with_their_triggers_entry_points_and_identities(
    password_mode: DeployRun,
) -> None:
    commands = deployed(password_mode)

    assert sorted(commands) == sorted(FUNCTIONS)
    for fn, argv in commands.items():
        f = flags(argv)
        assert argv[2] == f"genmedia-dev-{fn}"
        assert f["service-account"] == f"genmedia-dev-{fn}@genmedia-dev.iam.gserviceaccount.com"
        assert Path(f["source"]).name == fn and "gen2" in f and "quiet" in f
    assert flags(commands["batch"])["trigger-topic"] == "genmedia-dev-batch"
    assert "retry" in flags(commands["batch"])
    assert "trigger-http" in flags(commands["generation"]) and "trigger-http" in flags(commands["scheduling"])


def test_the_db_password_reaches_functions_as_a_secret_reference_never_a_value(
    password_mode: DeployRun,
) -> None:
    for fn, argv in deployed(password_mode).items():
        secrets = dict(pair.split("=", 1) for pair in flags(argv)["set-secrets"].split(","))
        assert secrets["DB_PASS"] == "genmedia-dev-db-password:latest", fn
        assert "DB_PASS" not in env_vars(argv)
        assert env_vars(argv)["DB_USER"] == "genmedia" and env_vars(argv)["DB_IAM_AUTH"] == "false"
    every_argv = [arg for call in password_mode.calls for arg in call["argv"]]
    assert not [arg for arg in every_argv if FAKE_DB_PASSWORD in arg]
    assert FAKE_DB_PASSWORD not in password_mode.stdout + password_mode.stderr


def test_migrations_run_with_the_owner_password_in_their_environment_before_any_deploy(
    password_mode: DeployRun,
) -> None:
    tools = [(c["tool"], c["argv"][:2]) for c in password_mode.calls]
    migrate = tools.index(("make", ["-C", str(ROOT)]))
    first_deploy = tools.index(("gcloud", ["functions", "deploy"]))
    assert migrate < first_deploy
    make = password_mode.calls[migrate]
    assert make["argv"] == ["-C", str(ROOT), "migrate"]
    assert make["env"] == {
        "INSTANCE_CONNECTION_NAME": "genmedia-dev:europe-west1:genmedia-dev-pg",
        "DB_USER": "genmedia", "DB_NAME": "genmedia", "DB_IAM_AUTH": "false", "DB_PASS": FAKE_DB_PASSWORD,
    }  # and no DATABASE_URL from the deployer's shell


def test_batch_trigger_subscription_gets_retries_and_dead_letters_after_max_delivery_attempts(
    password_mode: DeployRun,
) -> None:
    [update] = password_mode.gcloud("pubsub", "subscriptions", "update")
    assert update[3] == SUBSCRIPTION
    f = flags(update)
    assert f["max-delivery-attempts"] == "5"
    assert f["dead-letter-topic"] == "projects/genmedia-dev/topics/genmedia-dev-batch-dead-letter"
    assert (f["min-retry-delay"], f["max-retry-delay"]) == ("10s", "600s")
    assert int(f["ack-deadline"]) >= 540
    [binding] = password_mode.gcloud("pubsub", "subscriptions", "add-iam-policy-binding")
    pubsub_agent = "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com"
    assert flags(binding)["member"] == pubsub_agent
    assert flags(binding)["role"] == "roles/pubsub.subscriber"


def test_invokers_are_everyone_for_the_http_functions_and_the_eventarc_identity_for_batch(
    password_mode: DeployRun,
) -> None:
    calls = password_mode.gcloud("functions", "add-invoker-policy-binding")
    bindings = {(argv[2], flags(argv)["member"]) for argv in calls}

    eventarc = "serviceAccount:genmedia-dev-eventarc@genmedia-dev.iam.gserviceaccount.com"
    assert bindings == {
        ("genmedia-dev-batch", eventarc),
        ("genmedia-dev-generation", "allUsers"), ("genmedia-dev-scheduling", "allUsers"),
    }
    assert password_mode.gcloud("functions", "remove-invoker-policy-binding") == []
    public = {fn for fn, argv in deployed(password_mode).items() if "allow-unauthenticated" in flags(argv)}
    assert public == {"generation", "scheduling"}


def test_a_member_nobody_asked_for_loses_its_invoker_role_on_the_next_deploy(tmp_path: Path) -> None:
    eventarc = "serviceAccount:genmedia-dev-eventarc@genmedia-dev.iam.gserviceaccount.com"
    fake_bin = make_fake_bin(tmp_path, invokers={
        "genmedia-dev-generation": ["allUsers", "user:left-the-team@example.com"],
        "genmedia-dev-batch": [eventarc, "serviceAccount:genmedia-dev-scheduler@genmedia-dev.iam.gserviceaccount.com"],
        "genmedia-dev-scheduling": ["allUsers"],
    })
    tfvars = edited_tfvars(tmp_path, "dev", {"db_iam_auth = true": "db_iam_auth = false"})

    run = run_deploy(["--env", "dev", "--config", str(tfvars)], fake_bin)

    assert run.returncode == 0, run.stderr
    removed = {(argv[2], flags(argv)["member"]) for argv in run.gcloud("functions", "remove-invoker-policy-binding")}
    assert removed == {
        ("genmedia-dev-generation", "user:left-the-team@example.com"),
        ("genmedia-dev-batch", "serviceAccount:genmedia-dev-scheduler@genmedia-dev.iam.gserviceaccount.com"),
    }
    assert run.gcloud("functions", "add-invoker-policy-binding") == []  # the wanted ones were there
    [policy] = [argv for argv in run.gcloud("run", "services", "get-iam-policy") if argv[3] == "genmedia-dev-batch"]
    assert flags(policy)["filter"] == "bindings.role=roles/run.invoker"


def test_a_producer_is_not_deployed_before_batch_subscription_dead_letters(tmp_path: Path) -> None:
    fake_bin = make_fake_bin(tmp_path, dead_letters=False)

    run = run_deploy(["--env", "dev", "--only", "generation"], fake_bin)

    assert run.returncode != 0
    assert "does not dead-letter to projects/genmedia-dev/topics/genmedia-dev-batch-dead-letter yet" in run.stderr
    assert "./deploy.sh --env dev --only batch" in run.stderr
    assert run.gcloud("functions", "deploy") == [] and not [c for c in run.calls if c["tool"] == "make"]


def test_batch_subscription_dead_letters_before_any_producer_is_deployed(password_mode: DeployRun) -> None:
    order = [(argv[0], argv[1], argv[2]) for argv in (c["argv"] for c in password_mode.calls) if len(argv) > 2]
    update = order.index(("pubsub", "subscriptions", "update"))
    producers = [i for i, call in enumerate(order) if call[:2] == ("functions", "deploy")
                 and call[2] in ("genmedia-dev-generation", "genmedia-dev-scheduling")]
    assert producers and update < min(producers)


def test_credentials_are_checked_before_anything_runs(password_mode: DeployRun) -> None:
    assert password_mode.calls[0]["argv"] == ["auth", "print-access-token"]
    assert password_mode.calls[1]["argv"] == ["auth", "application-default", "print-access-token"]
