"""`genmedia batch submit` end to end: a file of prompts -> generation -> outbox -> Pub/Sub emulator -> batch
function -> PostgreSQL, followed by the command's live bar of item states until every item has ended."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import Pipeline, skip_module_without_emulator
from tests.integration.test_cli import genmedia
from tests.standin.gcs_server import GcsStandIn
from tests.standin.vertex_server import VertexStandIn

skip_module_without_emulator()
pytestmark = pytest.mark.e2e


def user_env(pipeline: Pipeline, home: Path) -> dict[str, str]:
    """A user's shell pointed at the pipeline's generation function, with the pipeline's key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENMEDIA_")}
    env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "GENMEDIA_URL": pipeline.generation.url,
                "GENMEDIA_API_KEY": pipeline.http.headers["Authorization"].removeprefix("Bearer ")})
    return env


def test_batch_submit_follows_every_item_to_success(make_pipeline: Callable[..., Pipeline], tmp_path: Path) -> None:
    pipeline = make_pipeline()
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("prompt,aspect_ratio\na lighthouse at dawn,16:9\na red fox in snow,\na paper boat,1:1\n")

    result = genmedia("batch", "submit", str(prompts), "--interval", "0.3", "--timeout", "90",
                      env=user_env(pipeline, tmp_path))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("succeeded") and "3/3" in result.stdout and "succeeded 3" in result.stdout
    progress = [line for line in result.stderr.splitlines() if line.startswith("bat_")]
    assert progress[0].split("  ")[0].endswith("0/3") and "succeeded 3" in progress[-1]


def test_batch_submit_exits_4_when_items_fail(make_pipeline: Callable[..., Pipeline], tmp_path: Path,
                                              vertex_standin: VertexStandIn, gcs_standin: GcsStandIn) -> None:
    pipeline = make_pipeline({"GENERATION_BACKEND": "vertex", "VERTEX_BASE_URL": vertex_standin.url,
                              "VERTEX_TOKEN": "standin-token", "OUTPUT_BUCKET": "genmedia-e2e-out",
                              "STORAGE_EMULATOR_HOST": gcs_standin.url})
    lines = '{"kind": "image", "prompt": "a calm lake"}\n{"kind": "image", "prompt": "[standin:rejected] no"}\n'

    result = genmedia("batch", "submit", "-", "--interval", "0.3", "--timeout", "90", "--json",
                      env=user_env(pipeline, tmp_path), stdin=lines)

    assert result.returncode == 4, result.stderr
    assert '"status": "partially_failed"' in result.stdout
    assert "1 of 2 items failed" in result.stderr
