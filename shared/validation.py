"""Pydantic validation turned into our ValidationError, with one field violation per problem."""

from __future__ import annotations

from typing import Any, TypeVar

import pydantic

from shared.exceptions import FieldViolation, ValidationError

M = TypeVar("M", bound=pydantic.BaseModel)

_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "string_too_short": "must not be empty",
}


def field_path(loc: tuple[int | str, ...], prefix: str = "") -> str:
    """`("items", 3, "prompt")` -> `items[3].prompt`, the way AIP-193 names nested fields."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else part
    return path


def _describe(error: Any) -> str:
    kind = error.get("type", "")
    if kind == "string_too_short" and error.get("ctx", {}).get("min_length", 1) > 1:
        return str(error["msg"]).lower()
    message = _MESSAGES.get(kind) or str(error["msg"])
    return message.removeprefix("Value error, ")[:200]


def violations_from(err: pydantic.ValidationError, prefix: str = "") -> list[FieldViolation]:
    """Field violations for every error pydantic found; never echoes the input values."""
    out = []
    for e in err.errors(include_url=False, include_input=False, include_context=True):
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        out.append(FieldViolation(field_path(loc, prefix) or "body", _describe(e)))
    return out


def parse_model(model: type[M], data: Any, *, prefix: str = "") -> M:
    """Validate `data` into `model`, or raise ValidationError naming every bad field."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as err:
        raise ValidationError.from_violations(violations_from(err, prefix)) from None
