"""Start-up configuration: one line naming the bad variable, never its value, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import Settings

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"DATABASE_URL": "postgresql+pg8000://u:hunter2-secret@/db?unix_sock=/nowhere", "GENERATION_BACKEND": "local",
        "API_KEY_PEPPER": "p" * 40, "PATH": "/usr/bin:/bin"}


def start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = "import runpy; runpy.run_path('functions/generation/main.py')"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize(("override", "variable"), [
    ({"DB_POOL_SIZE": "many"}, "DB_POOL_SIZE"),
    ({"DB_POOL_TIMEOUT": "-1"}, "DB_POOL_TIMEOUT"),
    ({"GENERATION_BACKEND": "dall-e"}, "GENERATION_BACKEND"),
    ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ({"GENERATION_BACKEND": "vertex"}, "OUTPUT_BUCKET"),
    ({"API_KEY_PEPPER": "short"}, "API_KEY_PEPPER"),
    ({"DATABASE_URL": ""}, "DATABASE_URL"),
    ({"VERTEX_QUOTAS": "imagen-4.0-generate-001=60"}, "VERTEX_QUOTAS"),
    ({"VERTEX_QUOTAS": "imagen-4.0-generate-001=0/60"}, "VERTEX_QUOTAS"),
    ({"VERTEX_QUOTAS": "imagen-4.0-generate-001=-5/60"}, "VERTEX_QUOTAS"),
    ({"VERTEX_QUOTA_SYNC_SHARE": "2"}, "VERTEX_QUOTA_SYNC_SHARE"),
    ({"DATABASE_URL": "", "INSTANCE_CONNECTION_NAME": "p:r:i", "DB_USER": "u", "DB_NAME": "d"}, "DB_PASS"),
])
def test_a_bad_setting_stops_start_up_with_one_line_naming_it(override: dict[str, str], variable: str) -> None:
    result = start({**GOOD, **override})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"genmedia: configuration error: {variable}:")
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr and "short" not in result.stderr


def test_good_settings_start() -> None:
    assert start(GOOD).returncode == 0


@pytest.mark.parametrize(("concurrency", "size", "overflow"), [(1, 1, 0), (2, 1, 1), (8, 4, 4), (80, 5, 5)])
def test_pool_is_sized_from_concurrency(concurrency: int, size: int, overflow: int) -> None:
    settings = Settings(function_concurrency=concurrency)
    assert (settings.pool_size, settings.max_overflow) == (size, overflow)
    assert settings.pool_size + settings.max_overflow <= concurrency or concurrency == 1
