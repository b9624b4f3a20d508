"""Secret masking: fake secrets from public scanner fixtures never reach a log line; look-alikes do."""

from __future__ import annotations

import io
import json
import logging
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shared import logging as shared_logging
from shared import masking
from shared.config import Settings
from shared.masking import MASK, is_sensitive_key, mask_text, mask_value

FIXTURES = json.loads((Path(__file__).parent.parent / "fixtures" / "secrets.json").read_text())
SECRETS: list[dict[str, Any]] = FIXTURES["secrets"]
LOOK_ALIKES: list[str] = FIXTURES["look_alikes"]


def _secret(entry: dict[str, Any]) -> str:
    return "".join(entry["parts"])


def _in_context(entry: dict[str, Any]) -> str:
    return str(entry["template"]).replace("{secret}", _secret(entry))


def _leaks(secret: str, rendered: str) -> bool:
    """The secret, or any 16-character piece of it, is visible."""
    if secret in rendered:
        return True
    return len(secret) > 16 and any(secret[i : i + 16] in rendered for i in range(len(secret) - 15))


Record = tuple[str, tuple[Any, ...], dict[str, Any]]
PLACEMENTS: dict[str, Callable[[str], Record]] = {
    "prompt": lambda text: (
        "generation accepted",
        (),
        {"prompt": f"A photo of a red fox in the snow. {text} Thanks!"},
    ),
    "header": lambda text: ("request headers", (), {"headers": {"X-Debug-Note": text, "Accept": "*/*"}}),
    "nested_json": lambda text: (
        "pubsub payload",
        (),
        {"payload": {"batch": {"items": [{"request": {"notes": [text]}}]}}},
    ),
    "url": lambda text: (
        "%s %s",
        (
            "GET",
            f"https://api.example.test/v1/callback?{text}&state=xyz"
            if "=" in text
            else f"https://api.example.test/v1/files/{text}/download",
        ),
        {},
    ),
    "message_arg": lambda text: ("upstream said: %s", (text,), {}),
    "json_string": lambda text: ("raw body", (), {"body": json.dumps({"config": {"value": text}})}),
}


@pytest.fixture(autouse=True)
def _restore_root_logger(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test leaves the root logger as it found it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    monkeypatch.setattr(shared_logging, "_formatter", None)
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def stream() -> io.StringIO:
    """stdout of a freshly configured logger."""
    out = io.StringIO()
    shared_logging.configure_logging(
        Settings.model_construct(google_cloud_project="mask-test", log_level="DEBUG"), stream=out
    )
    return out


def test_fixture_has_at_least_40_fake_secrets_of_many_kinds() -> None:
    assert len(SECRETS) >= 40
    assert len({entry["kind"] for entry in SECRETS}) >= 40


@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
@pytest.mark.parametrize("entry", SECRETS, ids=[entry["kind"] for entry in SECRETS])
def test_fake_secret_never_reaches_the_log_line(
    entry: dict[str, Any], placement: str, stream: io.StringIO
) -> None:
    message, args, extra = PLACEMENTS[placement](_in_context(entry))
    logging.getLogger("genmedia.masking").info(message, *args, extra=extra)
    line = stream.getvalue()
    json.loads(line)
    assert MASK in line
    assert not _leaks(_secret(entry), line), line


@pytest.mark.parametrize("entry", SECRETS, ids=[entry["kind"] for entry in SECRETS])
def test_fake_secret_in_an_exception_never_reaches_the_stack_trace(
    entry: dict[str, Any], stream: io.StringIO
) -> None:
    try:
        raise RuntimeError(f"upstream refused request with {_in_context(entry)}")
    except RuntimeError:
        logging.getLogger("genmedia.masking").exception("call failed")
    line = json.loads(stream.getvalue())
    assert "RuntimeError" in line["stack_trace"]
    assert not _leaks(_secret(entry), stream.getvalue())


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_look_alike_survives_unchanged(text: str, stream: io.StringIO) -> None:
    assert mask_text(text) == text
    logging.getLogger("genmedia.masking").info(
        "value: %s", text, extra={"value": text, "nested": {"v": [text]}}
    )
    line = json.loads(stream.getvalue())
    assert line["message"] == f"value: {text}"
    assert line["value"] == text
    assert line["nested"] == {"v": [text]}


def test_url_password_is_masked_but_user_and_host_are_kept() -> None:
    masked = mask_text("connecting to postgresql+pg8000://genmedia:s3cr3t-P4ss@10.0.0.3:5432/genmedia")
    assert masked == f"connecting to postgresql+pg8000://genmedia:{MASK}@10.0.0.3:5432/genmedia"


def test_surrounding_text_is_kept_around_a_masked_token() -> None:
    token = "ghp_" + "wWPw5k4aXcaT4fNP0UcnZwJUVFk6LO0pINUx"
    assert mask_text(f"cloning with {token} now") == f"cloning with {MASK} now"
    assert mask_text(f"Authorization: Bearer {token}") == f"Authorization: Bearer {MASK}"


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "Password",
        "DB_PASSWORD",
        "passwd",
        "pwd",
        "db_pass",
        "DB_PASS",
        "token",
        "access_token",
        "refreshToken",
        "secret",
        "client_secret",
        "Authorization",
        "proxy-authorization",
        "api_key",
        "apiKey",
        "API-KEY",
        "x-api-key",
        "X-Goog-Api-Key",
        "apikey",
        "cookie",
        "Set-Cookie",
        "private_key",
        "privateKey",
        "credentials",
        "aws_secret_access_key",
        "AccountKey",
        "session_id",
        "passphrase",
        "auth",
    ],
)
def test_values_under_sensitive_keys_are_masked(key: str) -> None:
    assert is_sensitive_key(key)
    assert mask_value({key: "plain-looking-value", "other": "kept"}) == {key: MASK, "other": "kept"}
    assert mask_value({"outer": [{key: {"deep": "x"}}]}) == {"outer": [{key: MASK}]}


@pytest.mark.parametrize(
    "key",
    [
        "prompt",
        "model",
        "author",
        "keyboard",
        "passenger",
        "kind",
        "status",
        "requestUrl",
        "userAgent",
        "monkey",
        "idempotency_key",
        "passed_checks",
    ],
)
def test_ordinary_keys_are_not_sensitive(key: str) -> None:
    assert not is_sensitive_key(key)
    assert mask_value({key: "kept"}) == {key: "kept"}


def test_a_secret_used_as_a_key_is_masked_without_losing_entries() -> None:
    first, second = "ghp_" + "wWPw5k4aXcaT4fNP0UcnZwJUVFk6LO0pINUx", "glpat-" + "hellOworld380_testin"
    masked = mask_value({first: "alice", second: "bob", "plain": 1}, jsonable=True)
    assert sorted(masked.values(), key=str) == [1, "alice", "bob"]
    assert first not in json.dumps(masked) and second not in json.dumps(masked)


def test_token_counts_are_numbers_not_secrets() -> None:
    usage = {"prompt_token_count": 17, "max_tokens": 1024, "total_tokens": 2048.0, "token_sampled": True}
    assert mask_value(usage) == usage
    assert (
        mask_text("max_tokens=1024, candidates_token_count: 1290")
        == "max_tokens=1024, candidates_token_count: 1290"
    )


def test_header_pairs_are_masked_by_name() -> None:
    headers = [("Authorization", "opaque"), ("Cookie", "a=b"), ("Accept", "application/json")]
    assert mask_value(headers) == [("Authorization", MASK), ("Cookie", MASK), ("Accept", "application/json")]


def test_mask_value_keeps_the_shape_of_what_it_is_given() -> None:
    marker = object()
    value = {"list": [1, "two"], "tuple": (3, "four"), "object": marker, "none": None}
    assert mask_value(value) == value
    assert mask_value(value)["object"] is marker
    assert type(mask_value(value)["tuple"]) is tuple


def test_mask_value_ends_cycles_and_deep_nesting() -> None:
    loop: list[Any] = ["start"]
    loop.append(loop)
    assert mask_value(loop) == ["start", "[cycle]"]
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(200):
        node["next"] = {}
        node = node["next"]
    assert "too deep" in json.dumps(mask_value(deep, jsonable=True))


def test_secret_cut_by_truncation_is_still_masked() -> None:
    key = "AIza" + "SyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe"
    text = "x " * 50 + key
    masked = mask_value(text, jsonable=True, max_chars=110)
    assert "AIza" not in masked and "truncated" in masked


_TOKENISH = st.text(alphabet=string.ascii_letters + string.digits + "_-./+=:@ \"'", max_size=80)
_KEYWORDS = st.sampled_from(
    ["password", "Token", "API_KEY", "auth", "cookie", "Bearer ", "basic ", "://u:p@h", "sig"]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_TOKENISH | _KEYWORDS, max_size=6).map("".join))
def test_the_cheap_pre_check_never_hides_what_the_full_scan_finds(text: str) -> None:
    """mask_text skips the regex when its pre-check says clean; that must give the same result."""
    assume(len(text) >= 8)  # shorter strings are left alone by design: no secret fits
    assert mask_text(text) == masking._SECRET_RE.sub(masking._replace, text)


@settings(max_examples=200, deadline=None)
@given(st.text(), st.text(alphabet="abcXYZ019 _-=:/@.", max_size=60))
def test_mask_text_never_raises_and_is_stable(prefix: str, noise: str) -> None:
    masked = mask_text(prefix + noise)
    assert isinstance(masked, str)
    assert mask_text(masked) == masked


@settings(max_examples=100, deadline=None)
@given(
    before=st.text(alphabet=st.characters(codec="utf-8"), max_size=40), index=st.integers(0, len(SECRETS) - 1)
)
def test_a_token_is_masked_whatever_text_surrounds_it(before: str, index: int) -> None:
    entry = SECRETS[index]
    secret = _secret(entry)
    masked = mask_text(f"{before} {_in_context(entry)} .")
    assert not _leaks(secret, masked)
