"""Choosing, caching and importing the media backends."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from shared.config import Settings
from shared.media.backends import MediaBackend, get_backend, reset_backends
from shared.media.local_backend import LocalBackend
from shared.media.vertex_backend import VertexBackend

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _fresh_backends() -> Iterator[None]:
    reset_backends()
    yield
    reset_backends()


def test_generation_backend_chooses_the_implementation(tmp_path: Path) -> None:
    assert isinstance(
        get_backend(Settings(generation_backend="local", local_data_dir=str(tmp_path))), LocalBackend
    )
    assert isinstance(
        get_backend(Settings(generation_backend="vertex", output_bucket="b-out")), VertexBackend
    )


def test_the_backend_is_built_once_and_reused_for_equal_settings(tmp_path: Path) -> None:
    first = get_backend(Settings(generation_backend="local", local_data_dir=str(tmp_path)))
    assert get_backend(Settings(generation_backend="local", local_data_dir=str(tmp_path))) is first
    other = get_backend(Settings(generation_backend="local", local_data_dir=str(tmp_path / "x")))
    assert other is not first
    reset_backends()
    assert get_backend(Settings(generation_backend="local", local_data_dir=str(tmp_path))) is not first


def test_concurrent_first_use_builds_one_backend_and_one_client() -> None:
    settings = Settings(
        generation_backend="vertex",
        output_bucket="b-out",
        vertex_base_url="http://127.0.0.1:9",
        vertex_token=SecretStr("t"),
    )
    backends: list[MediaBackend] = []
    clients: list[object] = []
    barrier = threading.Barrier(16)

    def use() -> None:
        barrier.wait()
        backend = get_backend(settings)
        backends.append(backend)
        assert isinstance(backend, VertexBackend)
        clients.append(backend.client())

    threads = [threading.Thread(target=use) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(b) for b in backends}) == 1
    assert len({id(c) for c in clients}) == 1


def test_one_client_per_location() -> None:
    backend = VertexBackend(
        Settings(output_bucket="b-out", vertex_base_url="http://127.0.0.1:9", vertex_token=SecretStr("t"))
    )
    assert backend.client() is backend.client("us-central1")
    assert backend.client("europe-west4") is not backend.client("us-central1")


def test_importing_the_media_package_pulls_in_no_google_sdk() -> None:
    code = (
        "import sys\n"
        "import shared.media.backends, shared.media.capabilities, shared.media.vertex_backend\n"
        "import shared.media.local_backend, shared.media.storage, shared.media.upstream\n"
        "heavy = [m for m in ('google.genai', 'google.cloud.storage', 'httpx2') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
