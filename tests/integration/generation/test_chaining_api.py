"""Chaining through the HTTP API: a video from an image job's output, an edit of it, and every bad
reference answered 400 or 404 naming its field before any model is called."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import av
import pytest
from PIL import Image, ImageChops, ImageOps, ImageStat

from shared import config
from tests.conftest import mint_key
from tests.integration.generation.test_generations_api import generate, poll_until_final, reason
from tests.servers import make_client
from tests.standin.vertex_server import VertexStandIn


@pytest.fixture
def local_client(db: Any, api_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The generation function on the local backend, data under tmp_path, videos done in 0.2 s."""
    monkeypatch.setenv("GENERATION_BACKEND", "local")
    monkeypatch.setenv("LOCAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LOCAL_VIDEO_DELAY_SECONDS", "0.2")
    monkeypatch.setenv("VIDEO_POLL_INTERVAL_SECONDS", "0")
    config.get_settings.cache_clear()
    return make_client("generation", key=api_key)


@pytest.fixture
def vertex_client(db: Any, api_key: str, vertex_env: dict[str, str]) -> Any:
    """The generation function on the Vertex backend, against the stand-ins."""
    config.get_settings.cache_clear()
    return make_client("generation", key=api_key)


def path_of(uri: str) -> Path:
    return Path(urlsplit(uri).path)


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel, 0-255."""
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3


def first_frame(path: Path) -> Image.Image:
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_image()


def an_image_job(client: Any, prompt: str = "a red fox in snow") -> dict[str, Any]:
    response = generate(client, {"kind": "image", "prompt": prompt, "aspect_ratio": "16:9"})
    assert response.status_code == 201
    return dict(response.get_json())


def test_a_video_chained_from_an_image_job_starts_on_that_image(local_client: Any) -> None:
    image = an_image_job(local_client)
    response = generate(local_client, {"kind": "video", "prompt": "the fox runs off", "duration_seconds": 4,
                                       "image": {"job_id": image["id"], "output": 0}})
    assert response.status_code == 202, response.get_json()
    video = poll_until_final(local_client, response.get_json()["id"])
    assert video["status"] == "succeeded"
    frame = first_frame(path_of(video["outputs"][0]["uri"]))
    with Image.open(path_of(image["outputs"][0]["uri"])) as source:
        expected = ImageOps.fit(source.convert("RGB"), frame.size)
    assert difference(frame, expected) < 6  # the same picture, through 4:2:0 video colour
    unrelated = Image.new("RGB", frame.size, (128, 128, 128))
    assert difference(frame, unrelated) > 20


def test_first_and_last_frames_bracket_the_local_video(local_client: Any) -> None:
    first, last = an_image_job(local_client, "dawn"), an_image_job(local_client, "dusk")
    response = generate(local_client, {
        "kind": "video", "model": "veo-3.1-fast-generate-preview", "prompt": "day passes", "duration_seconds": 4,
        "image": {"uri": first["outputs"][0]["uri"]}, "last_frame": {"job_id": last["id"]}})
    assert response.status_code == 202, response.get_json()
    video = poll_until_final(local_client, response.get_json()["id"])
    with av.open(path_of(video["outputs"][0]["uri"]).as_posix()) as container:
        frames = [f.to_image() for f in container.decode(video=0)]
    with Image.open(path_of(last["outputs"][0]["uri"])) as end:
        expected_end = ImageOps.fit(end.convert("RGB"), frames[-1].size)
    assert difference(frames[-1], expected_end) < 6


def test_an_edit_is_a_visibly_derived_picture_of_its_input(local_client: Any) -> None:
    source = an_image_job(local_client)
    response = generate(local_client, {"kind": "image", "prompt": "make it night", "aspect_ratio": "16:9",
                                       "image": {"job_id": source["id"]}})
    assert response.status_code == 201, response.get_json()
    edited_path = path_of(response.get_json()["outputs"][0]["uri"])
    with Image.open(edited_path) as edited, Image.open(path_of(source["outputs"][0]["uri"])) as original:
        assert edited.size == original.size
        assert 5 < difference(edited, original) < 80  # changed, yet plainly the same picture
        fresh = an_image_job(local_client, "something else entirely")
        with Image.open(path_of(fresh["outputs"][0]["uri"])) as other:
            assert difference(edited, original) < difference(edited, other)


def test_several_input_images_are_composed(local_client: Any) -> None:
    a, b = an_image_job(local_client, "a"), an_image_job(local_client, "b")
    response = generate(local_client, {"kind": "image", "prompt": "together", "model": "gemini-2.5-flash-image",
                                       "input_images": [{"job_id": a["id"]}, {"uri": b["outputs"][0]["uri"]}]})
    assert response.status_code == 201, response.get_json()


def error_field(response: Any) -> str:
    return str(response.get_json()["error"]["details"][0]["metadata"]["field"])


def test_another_owners_job_is_not_found_like_a_missing_one(local_client: Any, db: Any) -> None:
    image = an_image_job(local_client)
    stranger = make_client("generation", key=mint_key("stranger"))
    for ref in ({"job_id": image["id"]}, {"uri": image["outputs"][0]["uri"]}, {"job_id": "gen_doesnotexist"}):
        response = generate(stranger, {"kind": "video", "prompt": "steal", "image": ref})
        assert response.status_code == 404, ref
        assert reason(response) == "INPUT_NOT_FOUND" and error_field(response) == "image"
        assert response.get_json()["error"]["message"].endswith("not found")


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "video", "prompt": "p", "image": {"uri": "gs://someone-elses-bucket/cat.png"}}, "image.uri"),
    ({"kind": "video", "prompt": "p", "image": {"uri": "file:///etc/passwd"}}, "image.uri"),
    ({"kind": "video", "prompt": "p", "image": {"upload_id": "upl_x", "job_id": "gen_x"}}, "image"),
    ({"kind": "video", "prompt": "p", "model": "veo-3.1-generate-preview", "last_frame": {"job_id": "gen_x"}},
     "last_frame"),
    ({"kind": "video", "prompt": "p", "model": "veo-3.0-generate-001",
      "reference_images": [{"image": {"job_id": "gen_x"}, "type": "asset"}]}, "reference_images"),
    ({"kind": "image", "prompt": "p", "model": "imagen-4.0-generate-001", "image": {"job_id": "gen_x"}}, "image"),
])
def test_a_bad_reference_is_a_400_naming_its_field(local_client: Any, body: dict[str, Any], field: str) -> None:
    response = generate(local_client, body)
    assert response.status_code == 400
    assert error_field(response) == field


def test_an_output_that_is_not_a_picture_or_not_there_is_a_400(local_client: Any) -> None:
    image = an_image_job(local_client)
    response = generate(local_client, {"kind": "video", "prompt": "p", "image": {"job_id": image["id"], "output": 3}})
    assert response.status_code == 400 and error_field(response) == "image.output"
    video = generate(local_client, {"kind": "video", "prompt": "p", "duration_seconds": 4}).get_json()
    video = poll_until_final(local_client, video["id"])
    response = generate(local_client, {"kind": "video", "prompt": "p", "image": {"job_id": video["id"]}})
    assert response.status_code == 400 and "not a picture" in response.get_json()["error"]["message"]


def test_bad_references_never_reach_vertex(vertex_client: Any, vertex_standin: VertexStandIn) -> None:
    for ref in ({"job_id": "gen_nothere"}, {"uri": "gs://other-bucket/x.png"}, {"upload_id": "upl_nothere"}):
        response = generate(vertex_client, {"kind": "video", "prompt": "p", "image": ref})
        assert response.status_code in (400, 404)
    assert vertex_standin.calls() == []


def test_a_batch_item_names_its_bad_reference(local_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBSUB_BATCH_TOPIC", "genmedia-test-batches")
    config.get_settings.cache_clear()
    image = an_image_job(local_client)
    items = [{"kind": "video", "prompt": "ok", "image": {"job_id": image["id"]}},
             {"kind": "video", "prompt": "bad", "image": {"job_id": image["id"], "output": 5}}]
    response = local_client.post("/v1/batches", json={"items": items})
    assert response.status_code == 400
    assert error_field(response) == "items[1].image.output"
