"""Running deploy.sh against fake gcloud and make, and reading what it would have done."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
ENVIRONMENTS = sorted(p.stem for p in (INFRA / "environments").glob("*.tfvars"))
FAKES = Path(__file__).resolve().parent / "fakes"
FAKE_DB_PASSWORD = "fake-Sup3rS3cret-db-password-4f9a"
FAKE_API_KEY_PEPPER = "fakePepper0fAtLeast32Characters0000f00d"
FAKE_PROJECT_NUMBER = "123456789012"  # what fakes/gcloud answers to `gcloud projects describe`
BASH = shutil.which("bash") or "/bin/bash"


def tfvars_file(env: str) -> Path:
    """The committed settings of one environment."""
    return INFRA / "environments" / f"{env}.tfvars"


def load_deploy_config() -> ModuleType:
    """infra/scripts/deploy_config.py as a module (infra/ is not a Python package)."""
    path = INFRA / "scripts" / "deploy_config.py"
    spec = importlib.util.spec_from_file_location("deploy_config", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("deploy_config", module)
    spec.loader.exec_module(module)
    return module


@dataclass
class DeployRun:
    """One deploy.sh run: exit code, output, and every call the fakes recorded."""

    returncode: int
    stdout: str
    stderr: str
    calls: list[dict[str, Any]] = field(default_factory=list)

    def gcloud(self, *words: str) -> list[list[str]]:
        """argv of each recorded gcloud call that starts with `words`."""
        return [c["argv"] for c in self.calls
                if c["tool"] == "gcloud" and c["argv"][: len(words)] == list(words)]

    def printed(self, *words: str) -> list[list[str]]:
        """The dry run's printed commands (split like a shell would) that start with `words`."""
        commands = [shlex.split(line) for line in self.stdout.splitlines() if line.strip()]
        return [c for c in commands if c[: len(words)] == list(words)]


def flags(argv: list[str]) -> dict[str, str]:
    """--name=value flags of a command as a dict (bare flags map to "")."""
    out: dict[str, str] = {}
    for arg in argv:
        if arg.startswith("--"):
            name, _, value = arg[2:].partition("=")
            out[name] = value
    return out


def env_vars(argv: list[str]) -> dict[str, str]:
    """The --set-env-vars of a gcloud functions deploy command."""
    raw = flags(argv)["set-env-vars"]
    return dict(pair.split("=", 1) for pair in raw.split(","))


def make_fake_bin(directory: Path, tools: tuple[str, ...] = ("gcloud", "make"), **answers: Any) -> Path:
    """A directory with the fake `tools`, run by this interpreter, recording to calls.jsonl beside them.

    `answers` go to fake.json: `invokers` ({service: [member, ...]}, the run.invoker members a Cloud
    Run service already has) and `dead_letters` (False: batch's subscription has no dead-letter policy).
    """
    bin_dir = directory / "fake-bin"
    bin_dir.mkdir()
    (bin_dir / "fake.json").write_text(json.dumps({
        "log": str(bin_dir / "calls.jsonl"), "db_password": FAKE_DB_PASSWORD, "api_key_pepper": FAKE_API_KEY_PEPPER,
        **answers,
    }))
    for tool in tools:
        body = (FAKES / tool).read_text().split("\n", 1)[1]
        target = bin_dir / tool
        target.write_text(f"#!{sys.executable}\n{body}")
        target.chmod(0o755)
    return bin_dir


def recorded_calls(fake_bin: Path) -> list[dict[str, Any]]:
    log = fake_bin / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []


def run_deploy(args: list[str], fake_bin: Path, *, extra_env: dict[str, str] | None = None,
               path: str | None = None) -> DeployRun:
    """Run ./deploy.sh with the fakes first on PATH; nothing reaches Google Cloud.

    Its environment is PATH, HOME and TMPDIR (plus `extra_env`), never the test session's: settings
    such as GENERATION_BACKEND=local or API_KEY_PEPPER would otherwise carry a step that stops a
    deployer whose shell has neither.
    """
    (fake_bin / "calls.jsonl").write_text("")
    env = {
        "PATH": path if path is not None else f"{fake_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(fake_bin.parent),
        "TMPDIR": str(fake_bin.parent),
        **(extra_env or {}),
    }
    proc = subprocess.run(
        [BASH, str(ROOT / "deploy.sh"), *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )
    return DeployRun(proc.returncode, proc.stdout, proc.stderr, recorded_calls(fake_bin))


def edited_tfvars(tmp_path: Path, env: str, replacements: dict[str, str]) -> Path:
    """A copy of an environment's tfvars with the first match of each `old` replaced.

    `old` is literal text, except that the spaces around an `=` match any alignment.
    """
    text = tfvars_file(env).read_text()
    for old, new in replacements.items():
        pattern = re.escape(old).replace(r"\ =\ ", r"\s*=\s*")
        text, count = re.subn(pattern, new.replace("\\", "\\\\"), text, count=1)
        assert count == 1, f"{old!r} not in {env}.tfvars"
    path = tmp_path / f"{env}-edited.tfvars"
    path.write_text(text)
    return path
