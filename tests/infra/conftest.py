"""Fixtures of the infra tests: fake gcloud and make on a private PATH."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.harness import make_fake_bin


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    """A directory with fake gcloud and make (recording to fake-bin/calls.jsonl)."""
    return make_fake_bin(tmp_path)
