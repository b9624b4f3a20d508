"""The REST shapes of input pictures, checked as Vertex AI checks them (400 INVALID_ARGUMENT).

From the Vertex REST reference: a Veo `Image` is `{gcsUri | bytesBase64Encoded, mimeType}` with
`image/jpeg` or `image/png`; `lastFrame` needs `image`; `referenceImages[]` are `{image, referenceType}`
and exclude `image` and `lastFrame`. A Gemini `Part` holds exactly one of `text`, `inlineData
{mimeType, data}` or `fileData {fileUri, mimeType}`. Field names are read as proto3 JSON reads them,
lowerCamelCase or the proto's own snake_case (google-genai 3.6 sends `fileData: {file_uri, mime_type}`,
which Vertex accepts).
"""

from __future__ import annotations

from typing import Any

VEO_IMAGE_TYPES = ("image/png", "image/jpeg")
GEMINI_IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif")
REFERENCE_TYPES = ("asset", "style")


def problem(method: str, body: dict[str, Any]) -> str | None:
    """Why Vertex would refuse the pictures of this body, or None."""
    if method == "predictLongRunning":
        instances = body.get("instances") or [{}]
        return _veo(instances[0] if isinstance(instances[0], dict) else {})
    if method == "generateContent":
        return _gemini(body.get("contents") or [])
    return None


def _image(where: str, image: Any, types: tuple[str, ...]) -> str | None:
    if not isinstance(image, dict):
        return f"{where} must be an Image object."
    keys = set(image)
    if keys not in ({"gcsUri", "mimeType"}, {"bytesBase64Encoded", "mimeType"}):
        return f"{where} must have mimeType and exactly one of gcsUri, bytesBase64Encoded; got {sorted(keys)}."
    if "gcsUri" in image and not str(image["gcsUri"]).startswith("gs://"):
        return f"{where}.gcsUri must be a gs:// URI."
    if image["mimeType"] not in types:
        return f"{where}.mimeType {image['mimeType']} is not supported."
    return None


def _veo(instance: dict[str, Any]) -> str | None:
    for name in ("image", "lastFrame"):
        if name in instance:
            found = _image(f"instances[0].{name}", instance[name], VEO_IMAGE_TYPES)
            if found:
                return found
    if "lastFrame" in instance and "image" not in instance:
        return "instances[0].lastFrame requires instances[0].image."
    references = instance.get("referenceImages")
    if references is None:
        return None
    if "image" in instance or "lastFrame" in instance:
        return "referenceImages cannot be combined with image or lastFrame."
    if not isinstance(references, list) or not references:
        return "referenceImages must be a non-empty list."
    for i, reference in enumerate(references):
        where = f"instances[0].referenceImages[{i}]"
        if not isinstance(reference, dict) or set(reference) != {"image", "referenceType"}:
            return f"{where} must be {{image, referenceType}}."
        if str(reference["referenceType"]).lower() not in REFERENCE_TYPES:
            return f"{where}.referenceType must be asset or style."
        found = _image(f"{where}.image", reference["image"], VEO_IMAGE_TYPES)
        if found:
            return found
    return None


def camel(value: Any) -> Any:
    """Keys in lowerCamelCase, as a proto3 JSON parser canonicalises them."""
    if isinstance(value, dict):
        return {_camel_key(k): camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


def _camel_key(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(word.title() for word in rest)


def _gemini(contents: list[Any]) -> str | None:
    contents = camel(contents)
    for c, content in enumerate(contents):
        for p, part in enumerate(content.get("parts") or [] if isinstance(content, dict) else []):
            where = f"contents[{c}].parts[{p}]"
            kinds = set(part) & {"text", "inlineData", "fileData"} if isinstance(part, dict) else set()
            if len(kinds) != 1:
                return f"{where} must hold exactly one of text, inlineData, fileData."
            if "fileData" in kinds:
                data = part["fileData"]
                if not isinstance(data, dict) or set(data) != {"fileUri", "mimeType"}:
                    return f"{where}.fileData must be {{fileUri, mimeType}}."
                if not str(data["fileUri"]).startswith("gs://"):
                    return f"{where}.fileData.fileUri must be a gs:// URI."
                if data["mimeType"] not in GEMINI_IMAGE_TYPES:
                    return f"{where}.fileData.mimeType {data['mimeType']} is not supported."
    return None
