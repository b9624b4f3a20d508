"""Which URIs name objects of our own store: nothing outside it is ever read as an input."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.uploads.store import GcsUploadStore, LocalUploadStore


@pytest.mark.parametrize(("uri", "expected"), [
    ("gs://outs/uploads/upl_a", "uploads/upl_a"),
    ("gs://outs/images/gen_a/0.png", "images/gen_a/0.png"),
    ("gs://outs-other/uploads/upl_a", None),
    ("gs://other/outs/uploads/upl_a", None),
    ("gs://outs/", None),
    ("gs://outs/images/../../x", None),
])
def test_gcs_store_owns_only_its_bucket(uri: str, expected: str | None) -> None:
    assert GcsUploadStore("outs", "p").owns(uri) == expected


def test_local_store_owns_only_files_under_its_root(tmp_path: Path) -> None:
    store = LocalUploadStore(str(tmp_path / "data"))
    root = store.root.as_uri()
    assert store.owns(f"{root}/images/gen_a/0.png") == "images/gen_a/0.png"
    assert store.owns(store.upload_uri("upl_b")) == "uploads/upl_b"
    for outside in (f"{root}/../secret", "file:///etc/passwd", f"file://evil.example{store.root}/x",
                    f"gs://x{store.root}/y", f"{root}-sibling/x"):
        assert store.owns(outside) is None, outside
    assert store.stat("file:///etc/passwd") is None
