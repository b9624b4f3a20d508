"""Signed tokens: bound to purpose, object and expiry; any change, another purpose or age is a 403."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.results.signing import ExpiredSignatureError, InvalidSignatureError, Signer, derive_key

SECRET = "pepper-" + "x" * 40
FUTURE = int(time.time()) + 900


def test_a_signature_verifies_for_its_object_and_expiry() -> None:
    signer = Signer(SECRET, "download")
    signer.verify("images/gen_1/0.png", FUTURE, signer.sign("images/gen_1/0.png", FUTURE))


@pytest.mark.parametrize(("obj", "expires"), [("images/gen_1/1.png", FUTURE), ("images/gen_1/0.png", FUTURE + 1)])
def test_another_object_or_expiry_is_refused(obj: str, expires: int) -> None:
    signer = Signer(SECRET, "download")
    signature = signer.sign("images/gen_1/0.png", FUTURE)
    with pytest.raises(InvalidSignatureError):
        signer.verify(obj, expires, signature)


def test_a_signature_for_one_purpose_is_refused_by_another() -> None:
    signature = Signer(SECRET, "upload").sign("uploads/u/1", FUTURE)
    with pytest.raises(InvalidSignatureError):
        Signer(SECRET, "download").verify("uploads/u/1", FUTURE, signature)


def test_another_secret_is_refused() -> None:
    signature = Signer(SECRET + "!", "download").sign("a", FUTURE)
    with pytest.raises(InvalidSignatureError):
        Signer(SECRET, "download").verify("a", FUTURE, signature)


def test_an_expired_signature_is_refused_even_when_genuine() -> None:
    signer = Signer(SECRET, "download")
    past = int(time.time()) - 1
    with pytest.raises(ExpiredSignatureError) as raised:
        signer.verify("a", past, signer.sign("a", past))
    assert raised.value.http_status == 403 and raised.value.reason == "SIGNATURE_EXPIRED"


def test_purpose_keys_are_independent_of_each_other_and_of_the_secret() -> None:
    download, upload = derive_key(SECRET.encode(), "download"), derive_key(SECRET.encode(), "upload")
    assert len(download) == 32 and download != upload and SECRET.encode() not in download


@given(st.text(max_size=120))
def test_garbage_signatures_are_a_403_never_a_crash(garbage: str) -> None:
    with pytest.raises(InvalidSignatureError):
        Signer(SECRET, "download").verify("a", FUTURE, garbage)


@given(st.integers(min_value=0, max_value=42), st.integers(min_value=0, max_value=7))
def test_one_changed_character_is_refused(position: int, delta: int) -> None:
    signer = Signer(SECRET, "download")
    signature = signer.sign("images/gen_1/0.png", FUTURE)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    swapped = alphabet[(alphabet.index(signature[position]) + delta + 1) % 64]
    changed = signature[:position] + swapped + signature[position + 1:]
    with pytest.raises(InvalidSignatureError):
        signer.verify("images/gen_1/0.png", FUTURE, changed)
