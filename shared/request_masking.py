"""Masking what a client controls in a request line: query strings as they decode, and cut values.

The patterns of `shared.masking` read text as an application reads it; a query string carries it
percent-encoded, and fields cut to a length must be masked before the cut, never after.
"""

from __future__ import annotations

from urllib.parse import unquote_plus

from shared.masking import CUT_SLACK, MASK, is_sensitive_key, mask_text

__all__ = ["mask_and_cut", "mask_query"]

_DECODE_LEVELS = 3


def _decoded_forms(text: str) -> list[str]:
    """`text` and what it decodes to, once per level (clients double-encode too), until it is stable."""
    forms = [text]
    for _ in range(_DECODE_LEVELS):
        decoded = unquote_plus(forms[-1], errors="replace")
        if decoded == forms[-1]:
            break
        forms.append(decoded)
    return forms


def _holds_secret(text: str) -> bool:
    return any(mask_text(form) != form for form in _decoded_forms(text))


def _mask_parameter(pair: str) -> str:
    """One `name=value` of a query string: a part that holds a secret in any decoded form is masked
    whole, the rest is kept byte for byte.

    Whole, because a partial mask of one decoding can leave the rest visible in another (`+` in a
    base64 key decodes to a space and cuts it in two).
    """
    name, sep, value = pair.partition("=")
    secret_name = _holds_secret(name)
    secret_value = bool(value) and (
        any(is_sensitive_key(form) for form in _decoded_forms(name)) or _holds_secret(value) or _holds_secret(pair))
    if not (secret_name or secret_value):
        return pair
    return (MASK if secret_name else name) + sep + (MASK if secret_value else value)


def mask_query(query: str) -> str:
    """A raw query string with every parameter masked as the application would read it.

    The patterns expect literal `://`, spaces, newlines and `=`, which a query string carries
    percent-encoded (`postgres%3A%2F%2Fapp%3AS3cr3t%40db`, a PEM key as `%0A`-separated text): each
    parameter is decoded before it is masked. Parameters without secrets are kept byte for byte.
    """
    if not query:
        return query
    return "&".join(_mask_parameter(pair) for pair in query.split("&"))


def mask_and_cut(text: str, limit: int) -> str:
    """`text` masked, then cut to `limit` characters: a secret across the cut is masked whole.

    Masking sees `CUT_SLACK` characters past the limit, more than any secret's recognisable
    context, so a very long value costs no more than a short one.
    """
    if len(text) <= limit:
        return mask_text(text)
    return mask_text(text[: limit + CUT_SLACK])[:limit]
