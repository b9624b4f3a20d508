"""Uploads on the Vertex backend: the client PUT its bytes to Cloud Storage (here the GCS stand-in), so
they are checked on first use with one metadata call and ranged reads, and Vertex is sent the object's
`gs://` URI, never the bytes."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from shared import config
from shared.database import session_scope
from shared.uploads.store import store_for
from shared.uploads.uploads import UploadCreate, insert_upload
from tests.integration.generation.test_generations_api import generate, reason
from tests.servers import make_client
from tests.standin.fixtures import OUTPUT_BUCKET
from tests.standin.gcs_server import GcsStandIn
from tests.standin.vertex_server import VertexStandIn


@pytest.fixture
def client(db: Any, api_key: str, vertex_env: dict[str, str]) -> Any:
    config.get_settings.cache_clear()
    return make_client("generation", key=api_key)


def owner_of(client: Any) -> str:
    return str(client.environ_base["HTTP_AUTHORIZATION"].split("_")[1])


def pending_upload(client: Any, data: bytes, mime_type: str = "image/png") -> str:
    """What POST /v1/uploads records (minting the signed URL itself needs IAM, tested apart)."""
    store = store_for(config.get_settings())
    with session_scope() as session:
        row = insert_upload(session, UploadCreate(mime_type=mime_type, size_bytes=len(data)),  # type: ignore[arg-type]
                            owner_id=owner_of(client), store=store, ttl_seconds=900)
        return row.id


def put_to_bucket(gcs: GcsStandIn, upload_id: str, data: bytes, content_type: str = "image/png") -> None:
    """What the client's PUT to the signed URL leaves in the bucket."""
    from google.cloud import storage  # type: ignore[attr-defined]

    storage.Client(project="genmedia-test").bucket(OUTPUT_BUCKET).blob(f"uploads/{upload_id}").upload_from_string(
        data, content_type=content_type)


def png(size: tuple[int, int] = (1280, 720)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 90, 200)).save(out, "PNG")
    return out.getvalue()


def test_a_put_upload_is_checked_on_first_use_and_sent_as_its_gcs_uri(
        client: Any, vertex_standin: VertexStandIn, gcs_standin: GcsStandIn) -> None:
    data = png()
    upload_id = pending_upload(client, data)
    put_to_bucket(gcs_standin, upload_id, data)
    response = generate(client, {"kind": "video", "prompt": "sunrise", "image": {"upload_id": upload_id}})
    assert response.status_code == 202, response.get_json()
    [call] = vertex_standin.calls("predictLongRunning")
    assert call.body["instances"][0]["image"] == {"gcsUri": f"gs://{OUTPUT_BUCKET}/uploads/{upload_id}",
                                                  "mimeType": "image/png"}
    shown = client.get(f"/v1/uploads/{upload_id}").get_json()
    assert (shown["status"], shown["width"], shown["height"]) == ("ready", 1280, 720)
    reads = [r for r in gcs_standin.requests if (r.query.get("alt") or [""])[0] == "media"]
    assert reads and all("range" in r.headers for r in reads)  # headers only, never the whole object


def test_the_get_route_checks_a_pending_cloud_upload(client: Any, gcs_standin: GcsStandIn) -> None:
    data = png((64, 64))
    upload_id = pending_upload(client, data)
    assert client.get(f"/v1/uploads/{upload_id}").get_json()["status"] == "pending"
    put_to_bucket(gcs_standin, upload_id, data)
    assert client.get(f"/v1/uploads/{upload_id}").get_json()["status"] == "ready"


@pytest.mark.parametrize(("stored", "content_type", "problem"), [
    (b"GIF89a-not-what-was-declared" * 3, "image/png", "not a PNG, JPEG or WebP"),
    (None, "image/png", "has no bytes yet"),
])
def test_bad_or_missing_bytes_are_a_400_before_any_vertex_call(
        client: Any, vertex_standin: VertexStandIn, gcs_standin: GcsStandIn, stored: bytes | None,
        content_type: str, problem: str) -> None:
    upload_id = pending_upload(client, stored or png((8, 8)))
    if stored is not None:
        put_to_bucket(gcs_standin, upload_id, stored, content_type)
    response = generate(client, {"kind": "image", "prompt": "p", "image": {"upload_id": upload_id}})
    assert response.status_code == 400 and problem in response.get_json()["error"]["message"]
    assert reason(response) in ("UPLOAD_REJECTED", "UPLOAD_NOT_READY")
    assert vertex_standin.calls() == []


def test_a_gs_uri_of_another_bucket_is_refused(client: Any, vertex_standin: VertexStandIn) -> None:
    response = generate(client, {"kind": "video", "prompt": "p", "image": {"uri": "gs://public-data/cat.png"}})
    assert response.status_code == 400
    assert response.get_json()["error"]["details"][0]["metadata"]["field"] == "image.uri"
    assert "one of your outputs or uploads" in response.get_json()["error"]["message"]
    assert vertex_standin.calls() == []
