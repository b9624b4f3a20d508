"""The `genmedia` command getting results back: a batch submitted with custom ids, its outputs downloaded
by name with no Google credentials, jobs listed, a generation saved with -o, cancels."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared import config
from tests.integration.test_cli import GENMEDIA, genmedia
from tests.servers import ServedFunction, make_client, serve

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def setup(db: Any, api_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          ) -> Iterator[tuple[dict[str, str], ServedFunction]]:
    media = tmp_path / "media"
    env = {"GENERATION_BACKEND": "local", "LOCAL_VIDEO_DELAY_SECONDS": "30", "PUBSUB_BATCH_TOPIC": "batches",
           "PUBSUB_EMULATOR_HOST": "127.0.0.1:9", "PUBSUB_PUBLISH_TIMEOUT_SECONDS": "0.2",
           "LOCAL_DATA_DIR": str(media), "DATABASE_URL": db.url}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config.get_settings.cache_clear()
    with serve("generation", env, tmp=tmp_path) as generation:
        shell = {k: v for k, v in os.environ.items() if not k.startswith("GENMEDIA_")}
        shell.update({"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / ".config"),
                      "GENMEDIA_URL": generation.url, "GENMEDIA_API_KEY": api_key})
        yield shell, generation


def _deliver_all(batch_id: str, n: int) -> None:
    """Stand in for Pub/Sub: push every item to the batch function."""
    batch_fn = make_client("batch")
    for index in range(n):
        data = json.dumps({"batch_id": batch_id, "item_id": f"{batch_id}_{index:04d}", "request": {}}).encode()
        body = {"message": {"data": base64.b64encode(data).decode(), "messageId": str(index)}, "subscription": "s"}
        assert batch_fn.post("/", json=body).status_code in (200, 204)


def test_batch_results_downloads_every_output_named_by_custom_id(
    setup: tuple[dict[str, str], ServedFunction], tmp_path: Path,
) -> None:
    shell, _ = setup
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("custom_id,prompt\ncover,a red fox\nback,a grey owl\n,no id here\n")
    submitted = genmedia("batch", "submit", str(prompts), "--no-wait", env=shell)
    assert submitted.returncode == 0, submitted.stderr
    batch_id = submitted.stdout.strip()
    early = genmedia("batch", "results", batch_id, "-o", str(tmp_path / "early"), env=shell)
    assert early.returncode == 2 and "queued" in early.stderr
    _deliver_all(batch_id, 3)
    out = tmp_path / "out"
    # No Google credentials anywhere, and no API key is sent with the downloads: the links are the credential.
    result = genmedia("batch", "results", batch_id, "-o", str(out), env=shell)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(["cover.png", "back.png", "item-0002.png",
                                                            f"{batch_id}.jsonl"])
    assert all((out / name).read_bytes().startswith(PNG) for name in ("cover.png", "back.png", "item-0002.png"))
    lines = [json.loads(line) for line in (out / f"{batch_id}.jsonl").read_text().splitlines()]
    assert [line["custom_id"] for line in lines] == ["cover", "back", None]
    assert "3/3 files" in result.stderr

    listed = genmedia("job", "list", "--batch", batch_id, "--json", env=shell)
    assert listed.returncode == 0 and sorted(j["custom_id"] or "" for j in json.loads(listed.stdout)) == \
        ["", "back", "cover"]
    succeeded = genmedia("job", "list", "--status", "succeeded", env=shell)
    assert succeeded.stdout.count("succeeded") == 3 and "CUSTOM ID" in succeeded.stdout


def test_generate_wait_saves_the_output_and_cancels_answer(setup: tuple[dict[str, str], ServedFunction],
                                                           tmp_path: Path) -> None:
    shell, _ = setup
    saved = genmedia("generate", "image", "a kite", "--wait", "-o", str(tmp_path / "kite.png"), env=shell)
    assert saved.returncode == 0, saved.stderr
    assert (tmp_path / "kite.png").read_bytes().startswith(PNG)
    video = genmedia("generate", "video", "waves", "--duration", "4", env=shell)
    job_id = video.stdout.strip()
    cancelled = genmedia("job", "cancel", job_id, env=shell)
    assert cancelled.returncode == 0 and cancelled.stdout.strip() == f"{job_id} cancelled"
    status = genmedia("job", "status", job_id, env=shell)
    assert status.returncode == 4 and "cancelled" in status.stderr
    batch = genmedia("batch", "submit", "-", "--no-wait", env=shell, stdin='{"kind": "image", "prompt": "a"}\n')
    stopped = genmedia("batch", "cancel", batch.stdout.strip(), env=shell)
    assert stopped.returncode == 0 and "cancelled" in stopped.stdout and '"cancelled":1' in stopped.stdout


def test_the_command_exists() -> None:
    assert GENMEDIA.is_file()
