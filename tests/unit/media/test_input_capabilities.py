"""Which model takes which input picture, how many, and in which combinations (before any I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.media.capabilities import MODELS
from tests.unit.media.test_capabilities import GEMINI, IMAGEN, VEO, request, violated

PIC = {"upload_id": "upl_abc"}
OTHER = {"job_id": "gen_abc", "output": 0}


@pytest.mark.parametrize("model", IMAGEN)
def test_imagen_takes_no_input_picture(model: str) -> None:
    found = violated(request(model, image=PIC, input_images=[OTHER]))
    assert found == {"image": f"not supported by {model}", "input_images": f"not supported by {model}"}


@pytest.mark.parametrize("model", VEO + GEMINI)
def test_every_veo_and_gemini_model_takes_an_image(model: str) -> None:
    assert violated(request(model, image=PIC)) == {}


def test_last_frame_needs_image_and_a_model_that_takes_it() -> None:
    assert violated(request("veo-3.1-generate-preview", image=PIC, last_frame=OTHER)) == {}
    assert violated(request("veo-2.0-generate-001", image=PIC, last_frame=OTHER)) == {}
    assert violated(request("veo-3.1-generate-preview", last_frame=OTHER)) == {
        "last_frame": "needs image (the first frame)"}
    assert violated(request("veo-3.0-generate-001", image=PIC, last_frame=OTHER)) == {
        "last_frame": "not supported by veo-3.0-generate-001"}
    assert "last_frame" in violated(request("gemini-2.5-flash-image", image=PIC, last_frame=OTHER))


def refs(*types: str) -> list[dict[str, Any]]:
    return [{"image": PIC, "type": t} for t in types]


def test_reference_images_on_veo_31_up_to_three_assets_of_eight_seconds() -> None:
    model = "veo-3.1-fast-generate-preview"
    assert violated(request(model, reference_images=refs("asset", "asset", "asset"))) == {}
    assert violated(request(model, reference_images=refs("style"))) == {
        "reference_images": f"{model} takes up to 3 asset reference images"}
    assert violated(request(model, reference_images=refs("asset"), duration_seconds=4)) == {
        "duration_seconds": f"must be 8 with reference_images for {model}"}
    assert violated(request(model, reference_images=refs("asset"), aspect_ratio="9:16")) == {
        "aspect_ratio": f"must be 16:9 with reference_images for {model}"}
    assert violated(request(model, reference_images=refs("asset"), image=PIC)) == {
        "reference_images": "cannot be combined with image or last_frame"}


@pytest.mark.parametrize("model", ["veo-2.0-generate-001", "veo-3.0-generate-001", "veo-3.0-fast-generate-001",
                                   *GEMINI])
def test_reference_images_on_a_model_that_has_none_is_a_400_naming_the_field(model: str) -> None:
    assert violated(request(model, reference_images=refs("asset"))) == {
        "reference_images": f"not supported by {model}"}


def test_gemini_input_images_count_with_image_up_to_the_model_limit() -> None:
    assert violated(request("gemini-2.5-flash-image", input_images=[PIC, OTHER, PIC])) == {}
    assert violated(request("gemini-2.5-flash-image", image=PIC, input_images=[PIC, OTHER, PIC])) == {
        "input_images": "gemini-2.5-flash-image takes at most 3 pictures, image included"}
    assert violated(request("gemini-3-pro-image-preview", image=PIC, input_images=[PIC] * 13)) == {}
    assert "input_images" in violated(request("gemini-3-pro-image-preview", image=PIC, input_images=[PIC] * 14))
    assert "input_images" in violated(request("veo-3.1-generate-preview", input_images=[PIC]))


def test_allow_all_people_only_for_image_to_video() -> None:
    model = "veo-3.0-generate-001"
    assert "person_generation" in violated(request(model, person_generation="allow_all"))
    assert violated(request(model, person_generation="allow_all", image=PIC)) == {}


def test_the_limits_come_from_the_model_references() -> None:
    assert MODELS["veo-3.0-generate-001"].inputs.max_bytes == 20 * 2**20
    assert MODELS["veo-3.0-generate-001"].inputs.mime_types == ("image/png", "image/jpeg")
    assert MODELS["gemini-2.5-flash-image"].inputs.max_bytes == 30 * 2**20
    assert "image/webp" in MODELS["gemini-3-pro-image-preview"].inputs.mime_types
    assert MODELS["gemini-3-pro-image-preview"].max_input_images == 14


@pytest.mark.parametrize("ref", [
    {}, {"uri": "gs://b/o", "upload_id": "upl_a"}, {"upload_id": "upl_a", "output": 1},
    {"uri": "https://example.com/cat.png"}, {"job_id": "gen_a", "output": -1}, {"upload_id": "x"},
])
def test_a_malformed_reference_is_refused_by_the_request_model(ref: dict[str, Any]) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        request("veo-3.0-generate-001", image=ref)
