"""Uploads through the HTTP API on the local backend: create, PUT to the signed URL (no API key),
check, reference, and every bad upload refused with a 4xx naming its field."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import av
import pytest
from PIL import Image, ImageChops, ImageOps, ImageStat

from shared import config
from shared.media import png
from tests.conftest import mint_key
from tests.integration.generation.test_generations_api import generate, poll_until_final, reason
from tests.servers import make_client


@pytest.fixture
def client(db: Any, api_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("GENERATION_BACKEND", "local")
    monkeypatch.setenv("LOCAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LOCAL_VIDEO_DELAY_SECONDS", "0.2")
    monkeypatch.setenv("VIDEO_POLL_INTERVAL_SECONDS", "0")
    config.get_settings.cache_clear()
    return make_client("generation", key=api_key)


def picture(fmt: str = "PNG", size: tuple[int, int] = (320, 180),
            colour: tuple[int, int, int] = (220, 40, 90)) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", size, colour)
    image.paste((20, 200, 60), (0, 0, size[0] // 2, size[1] // 2))  # a quadrant, so framing shows
    image.save(out, fmt)
    return out.getvalue()


def create(client: Any, data: bytes, mime_type: str = "image/png", size: int | None = None) -> dict[str, Any]:
    declared = len(data) if size is None else size
    response = client.post("/v1/uploads", json={"mime_type": mime_type, "size_bytes": declared})
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def put(client: Any, upload: dict[str, Any], data: bytes, headers: dict[str, str] | None = None) -> Any:
    """PUT as a plain HTTP client would: the signed URL and the headers it came with, no API key."""
    parts = urlsplit(upload["upload_url"])
    sent = dict(upload["upload_headers"]) if headers is None else headers
    return client.put(f"{parts.path}?{parts.query}", data=data, headers={**sent, "Authorization": ""})


def uploaded(client: Any, data: bytes, mime_type: str = "image/png") -> str:
    upload = create(client, data, mime_type)
    response = put(client, upload, data)
    assert response.status_code == 200, response.get_json()
    return str(upload["upload_id"])


def field(response: Any) -> str:
    return str(response.get_json()["error"]["details"][0]["metadata"].get("field"))


def test_an_upload_is_created_put_without_a_key_and_checked(client: Any) -> None:
    data = picture()
    upload = create(client, data)
    assert upload["status"] == "pending" and upload["upload_id"].startswith("upl_")
    assert upload["upload_headers"] == {"Content-Type": "image/png",
                                        "x-goog-content-length-range": f"{len(data)},{len(data)}"}
    assert upload["upload_url"].startswith("http://localhost/v1/uploads/" + upload["upload_id"] + "?")
    answer = put(client, upload, data)
    assert answer.status_code == 200 and answer.get_json()["status"] == "ready"
    shown = client.get(f"/v1/uploads/{upload['upload_id']}").get_json()
    assert shown["status"] == "ready" and (shown["width"], shown["height"]) == (320, 180)
    assert shown["mime_type"] == "image/png" and "upload_url" not in shown


def test_a_video_from_an_upload_starts_on_the_uploaded_picture(client: Any) -> None:
    data = picture(size=(640, 360))
    upload_id = uploaded(client, data)
    response = generate(client, {"kind": "video", "prompt": "it moves", "duration_seconds": 4,
                                 "image": {"upload_id": upload_id}})
    assert response.status_code == 202, response.get_json()
    video = poll_until_final(client, response.get_json()["id"])
    with av.open(urlsplit(video["outputs"][0]["uri"]).path) as container:
        frame = next(container.decode(video=0)).to_image()
    expected = ImageOps.fit(Image.open(io.BytesIO(data)).convert("RGB"), frame.size)
    assert sum(ImageStat.Stat(ImageChops.difference(frame.convert("RGB"), expected)).mean) / 3 < 6


def test_an_upload_is_also_named_by_its_uri_and_a_jpeg_edits(client: Any) -> None:
    upload_id = uploaded(client, picture("JPEG"), "image/jpeg")
    job = generate(client, {"kind": "image", "prompt": "p", "image": {"upload_id": upload_id}})
    assert job.status_code == 201, job.get_json()
    root = Path(config.get_settings().local_data_dir).resolve()
    uri = (root / "uploads" / upload_id).as_uri()
    again = generate(client, {"kind": "video", "prompt": "p", "image": {"uri": uri}})
    assert again.status_code == 202, again.get_json()


def test_another_owners_upload_is_not_found(client: Any) -> None:
    upload_id = uploaded(client, picture())
    stranger = make_client("generation", key=mint_key("stranger"))
    assert stranger.get(f"/v1/uploads/{upload_id}").status_code == 404
    response = generate(stranger, {"kind": "video", "prompt": "p", "image": {"upload_id": upload_id}})
    assert response.status_code == 404 and reason(response) == "INPUT_NOT_FOUND" and field(response) == "image"


def test_an_upload_never_put_is_a_400_naming_the_field(client: Any) -> None:
    upload = create(client, picture())
    response = generate(client, {"kind": "video", "prompt": "p", "model": "veo-3.1-generate-preview",
                                 "image": {"upload_id": upload["upload_id"]}})
    assert response.status_code == 400 and reason(response) == "UPLOAD_NOT_READY" and field(response) == "image"


def bomb() -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    header = struct.pack(">IIBBBBB", 200_000, 200_000, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize(("data", "declared", "message"), [
    (b"this is a text file, saved as cat.png\n", "image/png", "not a PNG, JPEG or WebP"),
    (bomb(), "image/png", "200000x200000 pixels"),
    (picture("JPEG"), "image/png", "is a image/jpeg file, not the declared image/png"),
])
def test_bad_bytes_are_refused_at_put_and_when_referenced(client: Any, data: bytes, declared: str,
                                                          message: str) -> None:
    upload = create(client, data, declared)
    response = put(client, upload, data)
    assert response.status_code == 400 and field(response) == "body"
    assert message in response.get_json()["error"]["message"]
    shown = client.get(f"/v1/uploads/{upload['upload_id']}").get_json()
    assert shown["status"] == "rejected" and message in shown["error"]["message"]
    used = generate(client, {"kind": "image", "prompt": "p", "input_images": [{"upload_id": upload["upload_id"]}]})
    assert used.status_code == 400 and field(used) == "input_images[0]" and reason(used) == "UPLOAD_REJECTED"


def test_a_put_of_another_size_or_type_is_refused(client: Any) -> None:
    data = picture()
    upload = create(client, data)
    shorter = put(client, upload, data[:-1], {"Content-Type": "image/png"})
    assert shorter.status_code == 400 and field(shorter) == "body"
    empty = put(client, upload, b"", {"Content-Type": "image/png"})
    assert empty.status_code == 400 and field(empty) == "body"
    other_type = put(client, upload, data, {"Content-Type": "image/jpeg"})
    assert other_type.status_code == 400 and field(other_type) == "Content-Type"
    assert put(client, upload, data).status_code == 200
    assert put(client, upload, data).status_code == 409  # once ready, an upload never changes


def test_a_changed_or_expired_url_is_refused(client: Any) -> None:
    data = picture()
    upload = create(client, data)
    parts = urlsplit(upload["upload_url"])
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    for changed in ({**query, "signature": query["signature"][:-1] + ("A" if query["signature"][-1] != "A" else "B")},
                    {**query, "expires": str(int(query["expires"]) + 60)}, {"expires": query["expires"]}):
        response = client.put(f"{parts.path}?{urlencode(changed)}", data=data, headers=upload["upload_headers"])
        assert response.status_code == 403
    other = create(client, data)
    response = client.put(f"/v1/uploads/{other['upload_id']}?{parts.query}", data=data,
                          headers=upload["upload_headers"])
    assert response.status_code == 403  # one upload's signature never opens another


def test_sizes_and_types_are_checked_per_model(client: Any) -> None:
    webp = uploaded(client, picture("WEBP"), "image/webp")
    response = generate(client, {"kind": "video", "prompt": "p", "image": {"upload_id": webp}})
    assert response.status_code == 400 and "takes PNG or JPEG" in response.get_json()["error"]["message"]
    assert generate(client, {"kind": "image", "prompt": "p", "image": {"upload_id": webp}}).status_code == 201
    base = picture()
    big = base[:-12] + _chunk(b"zTXt", b"k\x00\x00" + b"\x00" * (21 * 2**20)) + base[-12:]
    large = uploaded(client, big)
    response = generate(client, {"kind": "video", "prompt": "p", "image": {"upload_id": large}})
    assert response.status_code == 400 and "up to 20 MB" in response.get_json()["error"]["message"]


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


@pytest.mark.parametrize(("body", "field_name"), [
    ({"mime_type": "image/gif", "size_bytes": 10}, "mime_type"),
    ({"mime_type": "image/png", "size_bytes": 0}, "size_bytes"),
    ({"mime_type": "image/png", "size_bytes": 31 * 2**20}, "size_bytes"),
    ({"mime_type": "image/png"}, "size_bytes"),
])
def test_a_bad_upload_request_is_a_400(client: Any, body: dict[str, Any], field_name: str) -> None:
    response = client.post("/v1/uploads", json=body)
    assert response.status_code == 400 and field(response) == field_name


def test_uploads_need_a_key(client: Any) -> None:
    response = client.post("/v1/uploads", json={"mime_type": "image/png", "size_bytes": 10},
                           headers={"Authorization": ""})
    assert response.status_code == 401


def test_the_local_png_writer_round_trips_through_the_checks(client: Any) -> None:
    data = png.encode_png(16, 16, [b"\x10\x20\x30" * 16] * 16)
    assert client.get(f"/v1/uploads/{uploaded(client, data)}").get_json()["width"] == 16
