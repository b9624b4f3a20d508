"""The installed `genmedia` command end to end: a subprocess against generation and scheduling served by
real functions-framework processes on the test PostgreSQL, asserting what a user and a script see
(stdout, stderr, exit code)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DatabaseHandle
from tests.servers import ServedFunction, free_port, serve

GENMEDIA = Path(sys.executable).parent / "genmedia"
SERVED_ENV = {
    "GENERATION_BACKEND": "local", "LOCAL_VIDEO_DELAY_SECONDS": "1", "VIDEO_POLL_INTERVAL_SECONDS": "0",
    "PUBSUB_BATCH_TOPIC": "batches", "PUBSUB_EMULATOR_HOST": "127.0.0.1:9", "PUBSUB_PUBLISH_TIMEOUT_SECONDS": "0.2",
}


@pytest.fixture(scope="module")
def served(test_database: DatabaseHandle, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[dict[str, ServedFunction]]:
    """Generation and scheduling, served once for the module (each test mints its own key)."""
    tmp = tmp_path_factory.mktemp("cli-served")
    env = {**SERVED_ENV, "DATABASE_URL": test_database.url, "LOCAL_DATA_DIR": str(tmp / "media")}
    with serve("generation", env, tmp=tmp) as generation, serve("scheduling", env, tmp=tmp) as scheduling:
        yield {"generation": generation, "scheduling": scheduling}


@pytest.fixture
def cli_env(served: dict[str, ServedFunction], api_key: str, tmp_path: Path) -> dict[str, str]:
    """What a user's shell would hold: the endpoints and a key, and a home without a config file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENMEDIA_")}
    env.update({"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / ".config"),
                "GENMEDIA_URL": served["generation"].url, "GENMEDIA_SCHEDULING_URL": served["scheduling"].url,
                "GENMEDIA_API_KEY": api_key})
    return env


def genmedia(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed command; stdin is not a terminal, so progress comes as plain lines."""
    return subprocess.run([str(GENMEDIA), *args], env=env, input=stdin, capture_output=True, text=True,
                          timeout=120, check=False)


def test_the_command_is_installed_with_the_project() -> None:
    assert GENMEDIA.is_file(), "pip install -e . creates it from [project.scripts]"
    result = genmedia("--help", env=dict(os.environ))
    assert result.returncode == 0 and "exit codes" in result.stdout


def test_generate_image_prints_the_uri_of_a_real_png(cli_env: dict[str, str]) -> None:
    result = genmedia("generate", "image", "a red fox in fresh snow", env=cli_env)

    assert result.returncode == 0, result.stderr
    (uri,) = result.stdout.split()
    assert Path(uri.removeprefix("file://")).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_generate_video_with_wait_shows_progress_and_prints_the_mp4(cli_env: dict[str, str]) -> None:
    result = genmedia("generate", "video", "waves at dusk", "--duration", "4", "--wait", "--interval", "0.2",
                      env=cli_env)

    assert result.returncode == 0, result.stderr
    assert "video running" in result.stderr  # plain progress lines without a terminal
    (uri,) = result.stdout.split()
    assert Path(uri.removeprefix("file://")).read_bytes()[4:8] == b"ftyp"


def test_a_video_without_wait_prints_its_id_and_job_status_follows_it(cli_env: dict[str, str]) -> None:
    started = genmedia("generate", "video", "a kite over a dune", env=cli_env)
    assert started.returncode == 0, started.stderr
    (job_id,) = started.stdout.split()
    assert job_id.startswith("gen_") and "genmedia job status" in started.stderr

    followed = genmedia("job", "status", job_id, "--wait", "--interval", "0.2", "--json", env=cli_env)
    assert followed.returncode == 0, followed.stderr
    assert '"status": "succeeded"' in followed.stdout and "video/mp4" in followed.stdout


def test_a_refused_request_prints_status_reason_message_and_each_field_then_exits_1(cli_env: dict[str, str]) -> None:
    result = genmedia("generate", "image", "a fox", "-n", "0", "--seed", "99999999999", env=cli_env)

    assert result.returncode == 1
    first, *details = result.stderr.splitlines()
    assert first.startswith("genmedia: 400 VALIDATION_FAILED: number_of_outputs:")
    assert [line.split(":")[0].strip() for line in details[:2]] == ["number_of_outputs", "seed"]
    assert any(line.strip().startswith("request id: cli-") for line in details)


def test_without_a_key_it_is_a_usage_error_and_with_a_wrong_one_the_api_refuses(cli_env: dict[str, str]) -> None:
    no_key = {k: v for k, v in cli_env.items() if k != "GENMEDIA_API_KEY"}
    missing = genmedia("generate", "image", "a fox", env=no_key)
    wrong = genmedia("generate", "image", "a fox", env={**cli_env, "GENMEDIA_API_KEY": "gm_000000000000_" + "x" * 43})

    assert missing.returncode == 2 and "GENMEDIA_API_KEY" in missing.stderr
    assert wrong.returncode == 1 and "401 API_KEY_INVALID" in wrong.stderr


def test_an_unreachable_api_exits_3_after_its_retries(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "GENMEDIA_URL": f"http://127.0.0.1:{free_port()}"}
    result = genmedia("--retries", "1", "job", "status", "gen_x", env=env)

    assert result.returncode == 3 and "cannot reach" in result.stderr and "retry 1 of 1" in result.stderr


def test_batch_submit_from_csv_prints_the_id_and_status_shows_item_counts(cli_env: dict[str, str],
                                                                          tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("prompt,aspect_ratio\na lighthouse at dawn,16:9\na paper boat,\n")
    submitted = genmedia("batch", "submit", str(prompts), "--no-wait", env=cli_env)
    assert submitted.returncode == 0, submitted.stderr
    (batch_id,) = submitted.stdout.split()

    status = genmedia("batch", "status", batch_id, env=cli_env)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("queued") and "0/2" in status.stdout and "queued 2" in status.stdout


def test_batch_wait_shows_plain_progress_lines_and_exits_3_when_time_runs_out(cli_env: dict[str, str]) -> None:
    lines = '{"kind": "image", "prompt": "a"}\n# a comment\n{"prompt": "b"}\n'
    result = genmedia("batch", "submit", "-", "--timeout", "1", "--interval", "0.3", env=cli_env, stdin=lines)

    assert result.returncode == 3  # nothing delivers the items here: Pub/Sub is unreachable on purpose
    assert "[........................] 0/2" in result.stderr and "queued 2" in result.stderr
    assert "still queued after 1s" in result.stderr


def test_a_bad_item_is_reported_with_the_line_of_the_file_it_came_from(cli_env: dict[str, str],
                                                                       tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("prompt,model\nfine,\nbroken,no-such-model\n")
    result = genmedia("batch", "submit", str(prompts), env=cli_env)

    assert result.returncode == 1
    assert f"items[1].model ({prompts} line 3):" in result.stderr


@pytest.mark.parametrize(("content", "message"), [
    ('{"prompt": "a"}\nnot json\n', "line 2: not JSON"), ("[1, 2]\n", "line 1: each line must be a JSON object"),
    ("", "no requests"),
])
def test_an_unreadable_input_file_is_a_usage_error(cli_env: dict[str, str], tmp_path: Path, content: str,
                                                   message: str) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text(content)
    result = genmedia("batch", "submit", str(path), env=cli_env)

    assert result.returncode == 2 and message in result.stderr


def test_schedule_create_list_show_and_delete(cli_env: dict[str, str]) -> None:
    created = genmedia("schedule", "create", "morning light", "--cron", "0 9 * * 1-5", "--timezone", "Europe/Paris",
                       env=cli_env)
    assert created.returncode == 0, created.stderr
    (schedule_id,) = created.stdout.split()
    once = genmedia("schedule", "create", "--at", "2099-01-01T00:00:00Z", "new year", env=cli_env)
    assert once.returncode == 0, once.stderr

    listed = genmedia("schedule", "list", env=cli_env)
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:3] == ["ID", "STATE", "WHEN"] and len(rows) == 2
    assert rows[1].startswith(schedule_id) and "0 9 * * 1-5 (Europe/Paris)" in rows[1]  # newest first

    assert genmedia("schedule", "delete", schedule_id, env=cli_env).returncode == 0
    again = genmedia("schedule", "show", schedule_id, env=cli_env)
    assert again.returncode == 1 and "404 NOT_FOUND" in again.stderr
    assert schedule_id not in genmedia("schedule", "list", "--json", env=cli_env).stdout


def test_the_config_file_supplies_endpoints_and_key(cli_env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / ".config" / "genmedia" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'url = "{cli_env["GENMEDIA_URL"]}"\nscheduling_url = "{cli_env["GENMEDIA_SCHEDULING_URL"]}"\n'
                      f'api_key = "{cli_env["GENMEDIA_API_KEY"]}"\n')
    config.chmod(0o600)
    env = {k: v for k, v in cli_env.items() if not k.startswith("GENMEDIA_")}

    result = genmedia("schedule", "list", "--json", env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]" and "warning" not in result.stderr


def test_api_key_create_mints_a_key_whose_scopes_the_api_enforces(cli_env: dict[str, str], db: Any) -> None:
    operator_env = {**cli_env, "DATABASE_URL": db.url}
    minted = genmedia("api-key", "create", "alice", "--scopes", "generate", env=operator_env)
    assert minted.returncode == 0, minted.stderr
    key = minted.stdout.splitlines()[-1]
    assert key.startswith("gm_")

    as_alice = {**cli_env, "GENMEDIA_API_KEY": key}
    assert genmedia("generate", "image", "a fox", env=as_alice).returncode == 0
    refused = genmedia("schedule", "list", env=as_alice)
    assert refused.returncode == 1 and "403 INSUFFICIENT_SCOPE" in refused.stderr


def test_a_failed_video_exits_4_with_its_reason(cli_env: dict[str, str], vertex_env: dict[str, str], db: Any,
                                                tmp_path: Path) -> None:
    env = {**SERVED_ENV, **vertex_env, "DATABASE_URL": db.url}
    with serve("generation", env, tmp=tmp_path) as generation:
        result = genmedia("generate", "video", "waves [standin:operation-error]", "--wait", "--interval", "0.2",
                          env={**cli_env, "GENMEDIA_URL": generation.url})

    assert result.returncode == 4, result.stderr
    assert "failed VIDEO_GENERATION_FAILED" in result.stderr and result.stdout == ""


def test_webhook_flags_reach_a_receiver_that_verifies_with_the_printed_secret(cli_env: dict[str, str]) -> None:
    import json

    from standardwebhooks import Webhook

    from tests.standin.webhook_receiver import running_receiver

    with running_receiver() as (receiver, url):
        secret = genmedia("webhook", "secret", env=cli_env)
        assert secret.returncode == 0 and secret.stdout.strip().startswith("whsec_"), secret.stderr
        made = genmedia("generate", "image", "a kite", "--webhook", url + "/hook", "--json", env=cli_env)
        assert made.returncode == 0, made.stderr
        (got,) = receiver.wait_for(1)
        event = Webhook(secret.stdout.strip()).verify(got.request.body, got.request.headers)
        assert event["type"] == "generation.succeeded" and event["data"]["id"] == json.loads(made.stdout)["id"]
        bad = genmedia("generate", "image", "a kite", "--webhook", "http://169.254.169.254/", env=cli_env)
        assert bad.returncode == 1 and "webhook_url" in bad.stderr
        scheduled = genmedia("schedule", "create", "--at", "2099-01-01T00:00:00Z", "later", "--webhook", url,
                             "--json", env=cli_env)
        assert scheduled.returncode == 0 and json.loads(scheduled.stdout)["webhook_url"] == url
        batch = genmedia("batch", "submit", "-", "--no-wait", "--json", "--webhook", url, env=cli_env,
                         stdin='{"prompt": "a"}\n{"prompt": "b"}\n')
        assert batch.returncode == 0 and json.loads(batch.stdout)["webhook"] == {"state": "pending", "attempts": 0}
