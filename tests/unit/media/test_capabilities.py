"""The capability table: defaults, each model's rules, and one named violation per bad field."""

from __future__ import annotations

from typing import Any

import pytest

from shared.exceptions import ValidationError
from shared.media.capabilities import DEFAULT_MODELS, MODELS, capabilities_for, resolve
from shared.media.request import GenerationRequest

IMAGEN = [
    "imagen-4.0-generate-001", "imagen-4.0-fast-generate-001", "imagen-4.0-ultra-generate-001",
    "imagen-3.0-generate-002",
]
GEMINI = ["gemini-2.5-flash-image", "gemini-3-pro-image-preview"]
VEO = [
    "veo-2.0-generate-001", "veo-3.0-generate-001", "veo-3.0-fast-generate-001", "veo-3.1-generate-preview",
    "veo-3.1-fast-generate-preview",
]
VEO3 = VEO[1:]


def request(model: str | None, kind: str | None = None, **fields: Any) -> GenerationRequest:
    if kind is None:
        kind = "video" if model and model.startswith("veo") else "image"
    return GenerationRequest.model_validate({"kind": kind, "prompt": "a lighthouse at dawn", "model": model,
                                             **fields})


def violated(req: GenerationRequest) -> dict[str, str]:
    """{field: description} of every violation `resolve` reports ({} when the request is fine)."""
    try:
        resolve(req)
    except ValidationError as exc:
        return {v.field: v.description for v in exc.violations}
    return {}


def test_the_table_holds_every_model_the_product_offers() -> None:
    assert sorted(MODELS) == sorted(IMAGEN + GEMINI + VEO)
    assert all(MODELS[m].api == "imagen" and MODELS[m].kind == "image" for m in IMAGEN)
    assert all(MODELS[m].api == "gemini" and MODELS[m].kind == "image" for m in GEMINI)
    assert all(MODELS[m].api == "veo" and MODELS[m].kind == "video" for m in VEO)


@pytest.mark.parametrize("kind", ["image", "video"])
def test_a_request_without_model_gets_the_default_of_its_kind(kind: str) -> None:
    resolved = resolve(request(None, kind))
    assert resolved.model == DEFAULT_MODELS[kind]  # type: ignore[index]
    assert MODELS[resolved.model].kind == kind
    assert not MODELS[resolved.model].preview, "a default must be a GA model"


def test_a_request_with_a_valid_model_is_returned_unchanged() -> None:
    req = request("imagen-4.0-generate-001", number_of_outputs=4, aspect_ratio="16:9", resolution="2K")
    assert resolve(req) is req


def test_an_unknown_model_is_a_violation_of_the_field_model() -> None:
    with pytest.raises(ValidationError) as caught:
        resolve(request("imagen-9.9-imaginary", "image"))
    assert [v.field for v in caught.value.violations] == ["model"]
    assert caught.value.http_status == 400
    assert caught.value.metadata["field"] == "model"


@pytest.mark.parametrize(("model", "kind"), [
    ("veo-3.0-generate-001", "image"), ("gemini-2.5-flash-image", "video"),
    ("imagen-4.0-generate-001", "video"),
])
def test_a_model_of_the_other_kind_is_a_violation_of_the_field_model(model: str, kind: str) -> None:
    assert list(violated(request(model, kind))) == ["model"]


def test_each_unsupported_field_is_named_once_in_request_order() -> None:
    req = request(
        "imagen-4.0-fast-generate-001", negative_prompt="blur", number_of_outputs=5, aspect_ratio="3:2",
        resolution="2K", duration_seconds=8, generate_audio=True,
    )
    with pytest.raises(ValidationError) as caught:
        resolve(req)
    fields = [v.field for v in caught.value.violations]
    assert fields == [
        "negative_prompt", "number_of_outputs", "aspect_ratio", "resolution", "duration_seconds",
        "generate_audio",
    ]
    assert caught.value.metadata["field"] == "negative_prompt"
    assert caught.value.message.startswith("negative_prompt: not supported by imagen-4.0-fast-generate-001")


@pytest.mark.parametrize("model", IMAGEN + GEMINI)
def test_image_models_refuse_a_negative_prompt(model: str) -> None:
    assert "not supported" in violated(request(model, negative_prompt="people"))["negative_prompt"]


@pytest.mark.parametrize("model", VEO)
def test_video_models_take_a_negative_prompt_seed_and_up_to_four_outputs(model: str) -> None:
    assert violated(request(model, negative_prompt="blur", seed=42, number_of_outputs=4)) == {}
    assert "between 1 and 4" in violated(request(model, number_of_outputs=5))["number_of_outputs"]


@pytest.mark.parametrize(
    ("model", "ok", "too_many"), [(m, 4, 5) for m in IMAGEN] + [(m, 1, 2) for m in GEMINI]
)
def test_number_of_images_per_model(model: str, ok: int, too_many: int) -> None:
    assert violated(request(model, number_of_outputs=ok)) == {}
    assert "number_of_outputs" in violated(request(model, number_of_outputs=too_many))


@pytest.mark.parametrize(("model", "accepted", "refused"), [
    ("imagen-4.0-generate-001", ["1:1", "3:4", "4:3", "9:16", "16:9"], ["3:2", "21:9"]),
    ("gemini-2.5-flash-image", ["1:1", "2:3", "3:2", "4:5", "5:4", "21:9"], ["2:1"]),
    ("veo-2.0-generate-001", ["16:9", "9:16"], ["1:1", "4:3"]),
    ("veo-3.1-generate-preview", ["16:9", "9:16"], ["1:1"]),
])
def test_aspect_ratios_per_model(model: str, accepted: list[str], refused: list[str]) -> None:
    for ratio in accepted:
        assert violated(request(model, aspect_ratio=ratio)) == {}, ratio
    for ratio in refused:
        assert "must be one of" in violated(request(model, aspect_ratio=ratio))["aspect_ratio"]


@pytest.mark.parametrize(("model", "accepted", "refused"), [
    ("imagen-4.0-generate-001", ["1K", "2K"], ["4K", "720p"]),
    ("imagen-4.0-ultra-generate-001", ["1K", "2K"], ["4K"]),
    ("imagen-4.0-fast-generate-001", [], ["1K", "2K"]),
    ("imagen-3.0-generate-002", [], ["1K"]),
    ("gemini-2.5-flash-image", [], ["1K", "2K"]),
    ("gemini-3-pro-image-preview", ["1K", "2K", "4K"], ["8K"]),
    ("veo-2.0-generate-001", [], ["720p"]),
    *[(m, ["720p", "1080p"], ["4K", "480p"]) for m in VEO3],
])
def test_resolutions_per_model(model: str, accepted: list[str], refused: list[str]) -> None:
    for resolution in accepted:
        assert violated(request(model, resolution=resolution)) == {}, resolution
    for resolution in refused:
        assert "resolution" in violated(request(model, resolution=resolution)), resolution


@pytest.mark.parametrize(("model", "accepted", "refused"), [
    ("veo-2.0-generate-001", [5, 6, 7, 8], [4, 9]),
    *[(m, [4, 6, 8], [5, 7, 10]) for m in VEO3],
])
def test_video_durations_per_model(model: str, accepted: list[int], refused: list[int]) -> None:
    for seconds in accepted:
        assert violated(request(model, duration_seconds=seconds)) == {}, seconds
    for seconds in refused:
        assert "must be one of" in violated(request(model, duration_seconds=seconds))["duration_seconds"]


@pytest.mark.parametrize("model", IMAGEN + GEMINI)
def test_images_have_no_duration_and_no_audio(model: str) -> None:
    assert set(violated(request(model, duration_seconds=8, generate_audio=False))) == {"duration_seconds",
                                                                                      "generate_audio"}


def test_only_veo_3_models_generate_audio() -> None:
    assert "generate_audio" in violated(request("veo-2.0-generate-001", generate_audio=True))
    for model in VEO3:
        assert violated(request(model, generate_audio=False)) == {}


@pytest.mark.parametrize("model", IMAGEN + GEMINI + VEO)
def test_every_model_takes_a_seed(model: str) -> None:
    assert violated(request(model, seed=2**32 - 1)) == {}


def test_person_generation_allow_all_is_for_images_only() -> None:
    for model in IMAGEN + GEMINI:
        assert violated(request(model, person_generation="allow_all")) == {}
    for model in VEO:
        assert violated(request(model, person_generation="dont_allow")) == {}
        assert "person_generation" in violated(request(model, person_generation="allow_all"))


def test_imagen_prompts_are_limited_but_gemini_takes_long_ones() -> None:
    long_prompt = "a very detailed scene " * 100  # 2200 characters, ~500 tokens
    assert "prompt" in violated(request("imagen-4.0-generate-001", prompt=long_prompt))
    assert violated(request("gemini-2.5-flash-image", prompt=long_prompt)) == {}


def test_capabilities_for_names_the_supported_models_when_unknown() -> None:
    with pytest.raises(ValidationError) as caught:
        capabilities_for("dall-e-3")
    assert "veo-3.0-generate-001" in caught.value.violations[0].description


def test_resolve_all_names_every_bad_field_under_its_prefix() -> None:
    from shared.exceptions import ValidationError
    from shared.media.capabilities import resolve_all

    good = GenerationRequest(kind="image", prompt="fine")
    bad = GenerationRequest(kind="video", prompt="x", model="imagen-4.0-generate-001")
    with pytest.raises(ValidationError) as caught:
        resolve_all([("items[0]", good), ("items[1]", bad)])
    assert [v.field for v in caught.value.violations] == ["items[1].model"]
    assert [r.model for r in resolve_all([("request", good)])] == ["gemini-2.5-flash-image"]
