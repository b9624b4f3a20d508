"""`make tf ENV=<env>`: terraform in the one root, on that environment's state with its own settings."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.infra.harness import ENVIRONMENTS, INFRA, ROOT, make_fake_bin, recorded_calls

MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="make not on PATH: skipping")


def make_tf(fake_bin: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert MAKE
    return subprocess.run([MAKE, "--no-print-directory", "-C", str(ROOT), "tf", *args,
                           f"TERRAFORM={fake_bin / 'terraform'}"],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_gets_its_own_backend_data_dir_and_tfvars(env: str, tmp_path: Path) -> None:
    fake_bin = make_fake_bin(tmp_path, tools=("terraform",))

    proc = make_tf(fake_bin, f"ENV={env}", "TF_ARGS=apply -auto-approve")

    assert proc.returncode == 0, proc.stderr
    init, apply = recorded_calls(fake_bin)
    assert init["argv"] == ["init", "-input=false", "-reconfigure", f"-backend-config=environments/{env}.gcs.tfbackend"]
    assert apply["argv"] == ["apply", "-auto-approve"]
    for call in (init, apply):
        assert Path(call["cwd"]) == INFRA
        assert call["env"]["TF_DATA_DIR"] == f".terraform/{env}"
    for command in ("plan", "apply", "destroy", "console", "import", "refresh"):
        assert apply["env"][f"TF_CLI_ARGS_{command}"] == f"-var-file=environments/{env}.tfvars"
        assert (INFRA / f"environments/{env}.tfvars").is_file()


def test_plan_is_the_default_and_an_unknown_environment_runs_nothing(tmp_path: Path) -> None:
    fake_bin = make_fake_bin(tmp_path, tools=("terraform",))

    assert make_tf(fake_bin, "ENV=dev").returncode == 0
    assert recorded_calls(fake_bin)[-1]["argv"] == ["plan"]
    (fake_bin / "calls.jsonl").write_text("")
    for bad in ("ENV=staging", "ENV="):
        proc = make_tf(fake_bin, bad)
        assert proc.returncode != 0 and "usage: make tf ENV=<env>" in proc.stderr
    assert recorded_calls(fake_bin) == []
