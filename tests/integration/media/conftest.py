"""The stand-in fixtures for these tests (the root conftest may also register tests.standin.fixtures)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.config import Settings
from shared.media.backends import reset_backends
from shared.media.upstream import RetryPolicy
from shared.media.vertex_backend import VertexBackend
from tests.standin import fixtures

# Fixtures are found by name in this module; these are the stand-ins' (see tests/standin/fixtures.py).
_vertex_standin_server = fixtures._vertex_standin_server
_gcs_standin_server = fixtures._gcs_standin_server
vertex_standin = fixtures.vertex_standin
gcs_standin = fixtures.gcs_standin
vertex_env = fixtures.vertex_env
vertex_settings = fixtures.vertex_settings


@pytest.fixture(autouse=True)
def _fresh_backends() -> Iterator[None]:
    reset_backends()
    yield
    reset_backends()


@pytest.fixture
def backend(vertex_settings: Settings) -> VertexBackend:
    """A Vertex backend on the stand-ins with quick retries (the deadline still binds)."""
    return VertexBackend(vertex_settings, policy=RetryPolicy(initial_backoff=0.02, max_backoff=0.1))
