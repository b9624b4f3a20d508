"""Pytest fixtures for the stand-ins; register with `pytest_plugins = ["tests.standin.fixtures"]`.

- `vertex_standin`: the Vertex AI stand-in (state reset per test); `.url`, `.queue()`, `.calls()`.
- `gcs_standin`: the Cloud Storage stand-in, with STORAGE_EMULATOR_HOST pointing at it.
- `vertex_env`: GENERATION_BACKEND=vertex and friends pointing at both stand-ins (settings cache and
  media backend reset), for code that reads `get_settings()`; returns the variables it set.
- `vertex_settings`: `Settings` read from that environment.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared import config
from shared.media.backends import reset_backends
from tests.standin import gcs_server, vertex_server
from tests.standin.gcs_server import GcsStandIn
from tests.standin.http_base import BackgroundServer
from tests.standin.vertex_server import VertexStandIn

OUTPUT_BUCKET = "genmedia-test-outputs"
TEST_PROJECT = "genmedia-test"
# Short enough for fast tests, long enough for a retry after a 429 or 503.
TEST_DEADLINE_SECONDS = 2.0
# The "slow" scenario answers after this, well past the deadline.
SLOW_SECONDS = TEST_DEADLINE_SECONDS + 1.5


@pytest.fixture(scope="session")
def _vertex_standin_server() -> Iterator[tuple[VertexStandIn, BackgroundServer]]:
    standin, server = vertex_server.start(slow_seconds=SLOW_SECONDS)
    yield standin, server
    server.stop()


@pytest.fixture(scope="session")
def _gcs_standin_server() -> Iterator[tuple[GcsStandIn, BackgroundServer]]:
    standin, server = gcs_server.start()
    yield standin, server
    server.stop()


@pytest.fixture
def vertex_standin(_vertex_standin_server: tuple[VertexStandIn, BackgroundServer]) -> Iterator[VertexStandIn]:
    """The Vertex AI stand-in, with no queued scenarios and an empty request log."""
    standin = _vertex_standin_server[0]
    standin.reset()
    standin.slow_seconds = SLOW_SECONDS
    yield standin
    standin.reset()


@pytest.fixture
def gcs_standin(_gcs_standin_server: tuple[GcsStandIn, BackgroundServer],
                monkeypatch: pytest.MonkeyPatch) -> Iterator[GcsStandIn]:
    """The Cloud Storage stand-in, empty, with STORAGE_EMULATOR_HOST set to it."""
    standin = _gcs_standin_server[0]
    standin.reset()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", standin.url)
    yield standin
    standin.reset()


@pytest.fixture
def vertex_env(vertex_standin: VertexStandIn, gcs_standin: GcsStandIn,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Environment for GENERATION_BACKEND=vertex against the stand-ins; no Google credentials needed."""
    env = {
        "GENERATION_BACKEND": "vertex",
        "GOOGLE_CLOUD_PROJECT": TEST_PROJECT,
        "VERTEX_LOCATION": "us-central1",
        "VERTEX_BASE_URL": vertex_standin.url,
        "VERTEX_TOKEN": "standin-token",
        "VERTEX_DEADLINE_SECONDS": str(TEST_DEADLINE_SECONDS),
        "OUTPUT_BUCKET": OUTPUT_BUCKET,
        "STORAGE_EMULATOR_HOST": gcs_standin.url,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # Nothing may reach for real credentials: an ADC lookup would fail loudly instead of hanging.
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/genmedia-test-credentials.json")
    config.get_settings.cache_clear()
    reset_backends()
    yield env
    reset_backends()
    config.get_settings.cache_clear()


@pytest.fixture
def vertex_settings(vertex_env: dict[str, str]) -> config.Settings:
    """Settings for GENERATION_BACKEND=vertex against the stand-ins."""
    return config.Settings()
