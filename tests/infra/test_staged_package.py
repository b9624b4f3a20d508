"""What deploy.sh uploads: per function, a self-contained package with main.py at its root that serves."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.infra.harness import ROOT, make_fake_bin, run_deploy
from tests.servers import free_port

FUNCTIONS = ("generation", "batch", "scheduling")
VENV_BIN = Path(sys.executable).parent
# The venv may hold an editable install of this repo, which would quietly serve `functions` and
# `shared` from the checkout; Cloud Functions has none, so the staged code must run without it.
NO_EDITABLE_INSTALL = """import sys
sys.meta_path[:] = [
    f for f in sys.meta_path if not (getattr(f, "__module__", "") or "").startswith("__editable__")
]
"""


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three packages, staged by a dry run into a directory it keeps."""
    tmp = tmp_path_factory.mktemp("staging")
    stage = tmp / "packages"
    run = run_deploy(["--dry-run", "--env", "dev", "--stage-dir", str(stage)], make_fake_bin(tmp))
    assert run.returncode == 0, run.stderr
    return stage


@pytest.fixture(scope="module")
def isolated_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A Cloud Functions instance's view, roughly: no checkout on the path, a database nobody serves."""
    site = tmp_path_factory.mktemp("site")
    (site / "sitecustomize.py").write_text(NO_EDITABLE_INSTALL)
    unset = ("PYTHONPATH", "DATABASE_URL", "INSTANCE_CONNECTION_NAME")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update({"PYTHONPATH": str(site), "GENERATION_BACKEND": "local", "PYTHONDONTWRITEBYTECODE": "1",
                "DATABASE_URL": f"postgresql+pg8000://nobody@/none?unix_sock={site}/.s.PGSQL.1"})
    return env


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_each_package_has_main_its_own_folder_shared_and_requirements(staged: Path, fn: str) -> None:
    package = staged / fn

    assert (package / "main.py").read_text() == (ROOT / "functions" / fn / "main.py").read_text()
    assert (package / "shared" / "__init__.py").is_file()
    assert (package / "requirements.txt").read_text() == (ROOT / "requirements.txt").read_text()
    assert sorted(p.name for p in (package / "functions").iterdir()) == ["__init__.py", fn]
    assert not list(package.rglob("__pycache__")) and not list(package.rglob("*.pyc"))
    for source in (ROOT / "functions" / fn).rglob("*.py"):
        if "__pycache__" not in source.parts:
            assert (package / "functions" / fn / source.relative_to(ROOT / "functions" / fn)).is_file()


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_each_package_imports_with_only_its_own_files(
    staged: Path, fn: str, isolated_env: dict[str, str]
) -> None:
    probe = (
        "import sys, main\n"
        "for name, module in sorted(sys.modules.items()):\n"
        "    ours = name.split('.')[0] in ('main', 'functions', 'shared')\n"
        "    if ours and getattr(module, '__file__', None):\n"
        "        print(name, module.__file__)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], cwd=staged / fn, env=isolated_env,
                          capture_output=True, text=True, timeout=60, check=False)

    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert "shared" in loaded
    assert all(Path(path).is_relative_to(staged / fn) for path in loaded.values()), loaded
    assert not [name for name in loaded if name.startswith("functions.") and name.split(".")[1] != fn]


def test_staged_generation_serves_healthz_under_functions_framework(
    staged: Path, tmp_path: Path, isolated_env: dict[str, str]
) -> None:
    package, port = staged / "generation", free_port()
    log = tmp_path / "generation.log"
    cmd = [str(VENV_BIN / "functions-framework"), f"--source={package / 'main.py'}", "--target=generation",
           "--signature-type=http", f"--port={port}", "--host=127.0.0.1"]
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, cwd=package, env=isolated_env, stdout=out, stderr=subprocess.STDOUT)
    try:
        response = _get_when_up(f"http://127.0.0.1:{port}/healthz", process, log)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _get_when_up(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 20.0
) -> requests.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail("functions-framework exited:\n" + log.read_text(errors="replace")[-3000:])
        try:
            return requests.get(url, timeout=2)
        except requests.ConnectionError:
            time.sleep(0.1)
    pytest.fail(f"{url} did not answer in {timeout}s")


def test_a_stage_dir_that_is_not_empty_is_refused(tmp_path: Path) -> None:
    stage = tmp_path / "busy"
    stage.mkdir()
    (stage / "keep.txt").write_text("mine")

    run = run_deploy(["--dry-run", "--stage-dir", str(stage)], make_fake_bin(tmp_path))

    assert run.returncode != 0 and "is not empty" in run.stderr
    assert (stage / "keep.txt").read_text() == "mine"
