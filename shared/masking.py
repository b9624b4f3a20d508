"""Secret masking for log lines and error bodies: values under sensitive keys and secret-shaped text."""

from __future__ import annotations

import base64
import binascii
import datetime
import math
import re
import string
import uuid
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["CUT_SLACK", "MASK", "is_sensitive_key", "mask_text", "mask_value"]

MASK = "[REDACTED]"


def _ci(word: str) -> str:
    """`word` in any letter case, `_` as `_`, `-` or nothing; no (?i): sre is ~10x slower with it."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else "[_-]?" if c == "_" else re.escape(c)
                   for c in word)


_SEP = r"""(?:\\?["'])?[ \t]{0,4}+(?::=|=>|[:=])[ \t]*+(?:\\?["'])?"""
_SCHEME = f"(?:(?:{_ci('bearer')}|{_ci('basic')}|{_ci('token')})[ \\t]++)?"
_PEM = r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END[A-Z0-9 ]{0,40}-----|\Z)"
_KV_VALUE = rf"""(?P<secret>{_PEM}|(?<=["'])(?:[^"'\\\r\n]|\\[^"'])+|[^\s"'\\&,;<>]+)"""
# Key words whose values are secrets in `key=value`, `"key": "value"` or `Key: value` text; the
# first list also as part of a longer key (`aws_secret_access_key`), the second only on their own.
_KV_WORDS = ("password", "passwd", "passphrase", "secret", "token", "api_key", "access_key", "account_key",
             "private_key", "credential", "authorization", "signature", "session_id", "session_key", "jwt")
_KV_EXACT = ("pass", "pwd", "auth", "sig")



def _kv_alternatives() -> list[str]:
    """One alternative per first letter of the key words (a small trie: fewer alternatives to try)."""
    keys: dict[str, list[str]] = {}
    for word in _KV_WORDS:
        keys.setdefault(word[0], []).append(_ci(word[1:]) + r"[\w.-]{0,40}+")
    for word in _KV_EXACT:
        keys.setdefault(word[0], []).append(_ci(word[1:]) + "(?![A-Za-z0-9])")
    return [f"{_ci(first)}(?:{'|'.join(rests)}){_SEP}{_SCHEME}{_KV_VALUE}" for first, rests in keys.items()]


# (name, pattern) per secret shape. `(?P<secret>...)` marks the part replaced (else all of it). Each
# starts with a literal or one character class, so sre rejects it at a position in one comparison;
# lookbehinds for word starts come after that first literal for the same reason.
_ALTERNATIVES: tuple[tuple[str, str], ...] = (
    ("pem", _PEM),
    ("url", r"""://[^\s:/?#@"'<>\\]*+:(?P<secret>[^\s/?#@"'<>\\]+)(?=@)"""),
    ("google_api_key", r"AIza[0-9A-Za-z_-]{35}"),
    ("google_oauth", r"ya29\.[0-9A-Za-z_-]{20,}"),
    ("google_refresh", r"1//0[0-9A-Za-z_-]{30,}"),
    ("google_client_secret", r"GOCSPX-[0-9A-Za-z_-]{20,}"),
    ("google_client_id", r"[0-9](?<![0-9][0-9])[0-9]{5,}+-[a-z0-9]{32}\.apps\.googleusercontent\.com"),
    ("jwt", r"eyJ(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{13,}+\.[A-Za-z0-9_-]{8,}+(?:\.[A-Za-z0-9_-]*+)?"),
    ("aws_key_id", r"A(?:KIA|SIA|BIA|CCA|3T[A-Z0-9])[A-Z0-9]{16}(?![A-Z0-9])"),
    ("github", r"gh[pousr]_[A-Za-z0-9]{30,}"),
    ("github_pat", r"github_pat_[A-Za-z0-9_]{22,}"),
    ("gitlab", r"gl(?:pat|dt|ptt|rt|soat|cbt|ffct|imt|oas)-[A-Za-z0-9_-]{20,}"),
    ("slack", r"xox[abposre]-[A-Za-z0-9-]{11,}"),
    ("slack_app", r"xapp-[0-9]-[A-Za-z0-9-]{10,}"),
    ("slack_hook", r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>[A-Za-z0-9/_-]{8,})"),
    ("stripe", r"[sr]k_(?:live|test)_[A-Za-z0-9]{10,}"),
    ("stripe_webhook", r"whsec_[A-Za-z0-9]{20,}"),
    ("sendgrid", r"SG\.[A-Za-z0-9_-]{16,}+\.[A-Za-z0-9_-]{16,}"),
    ("npm", r"npm_[A-Za-z0-9]{36}"),
    ("pypi", r"pypi-AgE[A-Za-z0-9_-]{50,}"),
    ("square", r"sq0(?:csp|atp)-[A-Za-z0-9_-]{22,}"),
    ("discord", r"[MNO][A-Za-z0-9_-]{23,25}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,}"),
    ("telegram", r"[0-9]{8,10}:AA[A-Za-z0-9_-]{33}"),
    ("mailchimp", r"[0-9a-f]{32}-us[0-9]{1,2}(?![0-9])"),
    ("docker", r"dckr_pat_[A-Za-z0-9_-]{20,}"),
    ("digitalocean", r"do[opr]_v1_[a-f0-9]{64}"),
    ("shopify", r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"),
    ("vault", r"hv[sbr]\.[A-Za-z0-9_-]{24,}"),
    ("postman", r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}"),
    ("age", r"AGE-SECRET-KEY-1[0-9A-Z]{58}"),
    # Short prefixes that also occur inside words ("task-..."): only at the start of a word.
    ("openai", r"sk-(?<![A-Za-z0-9]sk-)[A-Za-z0-9_-]{20,}"),
    ("genmedia", r"gm_(?<![A-Za-z0-9]gm_)[A-Za-z0-9_-]{16,}"),
    ("huggingface", r"hf_(?<![A-Za-z0-9]hf_)[A-Za-z0-9]{30,}"),
    ("twilio", r"[SA][KC](?<![A-Za-z0-9]..)(?<=SK|AC)[0-9a-z]{32}(?![0-9A-Za-z])"),
    ("mailgun", r"key-(?<![A-Za-z0-9]key-)[0-9a-f]{32}(?![0-9a-f])"),
    # "Bearer of bad news" is prose: a token has a digit or punctuation.
    ("bearer", r"[Bb](?:earer|EARER)[ \t]++(?P<secret>(?=[A-Za-z]*+[0-9._~+/-])[A-Za-z0-9._~+/-]{8,}+=*)"),
    ("basic", r"[Bb](?:asic|ASIC) ++(?P<secret>[A-Za-z0-9+/]{6,}+={0,2})"),
    ("cookie", rf"""[Ss][Ee][Tt]-[Cc][Oo][Oo][Kk][Ii][Ee]{_SEP}(?P<secret>[^\r\n"'\\]+)"""),
    ("cookie", rf"""[Cc][Oo][Oo][Kk][Ii][Ee]{_SEP}(?P<secret>[^\r\n"'\\]+)"""),
    *(("kv", pattern) for pattern in _kv_alternatives()),
    # An AWS secret access key on its own: exactly 40 base64 characters mixing cases and digits.
    # Not followed by "." either: a path's 40 characters before a dotted token (a JWT, a Discord
    # token) would otherwise be masked in place of the token, leaving the token itself visible.
    ("aws_secret", r"(?<![A-Za-z0-9+=])(?=[A-Za-z0-9/+]{40}(?![A-Za-z0-9+=.]))(?=[a-z0-9/+]{0,39}[A-Z])"
                   r"(?=[A-Z0-9/+]{0,39}[a-z])(?=[A-Za-z/+]{0,39}[0-9])[A-Za-z0-9/+]{40}"),
)
# Each alternative ends in an empty group `t<i>` (a group at its start would defeat the fast reject).
_SECRET_RE = re.compile("|".join(
    pattern.replace("(?P<secret>", f"(?P<s{i}>") + f"(?P<t{i}>)"
    for i, (_, pattern) in enumerate(_ALTERNATIVES)
))


def _basic_credentials(secret: str) -> bool:
    try:
        return b":" in base64.b64decode(secret + "=" * (-len(secret) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False


def _kv_value(secret: str) -> bool:
    # "max_tokens: 1024" is a count, not a secret.
    return secret != MASK and not secret.isdigit()


# Checks that need more than a regex; a rejected match only ever spans a key and its plain value.
_CHECKS: dict[str, Callable[[str], bool]] = {"basic": _basic_credentials, "kv": _kv_value}
# Index of each alternative's end group -> (index of its masked group or 0 for all of it, check).
_PLAN: dict[int, tuple[int, Callable[[str], bool] | None]] = {
    _SECRET_RE.groupindex[f"t{i}"]: (_SECRET_RE.groupindex.get(f"s{i}", 0), _CHECKS.get(name))
    for i, (name, _) in enumerate(_ALTERNATIVES)
}


def _replace(match: re.Match[str]) -> str:
    secret, check = _PLAN[match.lastindex or 0]
    text = match.group()
    if check is not None and not check(match.group(secret) if secret else text):
        # Not a secret after all: keep its first character and look inside the rest.
        return text[0] + mask_text(text[1:])
    if not secret:
        return MASK
    start, end = match.span(secret)
    origin = match.start()
    return text[: start - origin] + MASK + text[end - origin :]


# Cheap pre-check on bytes (str methods are ~10x faster than sre per character): token characters
# become "a" so one `in` finds any 16-character token run; separators and "@" are kept for the others.
# It must never miss what the full scan would find: every token shape above is 16+ such characters.
_CLASSES = bytearray(b" " * 256)
for _c in (string.ascii_letters + string.digits + "_-+/").encode():
    _CLASSES[_c] = ord("a")
for _c in b":=@":
    _CLASSES[_c] = _c
_CLASS_TABLE = bytes(_CLASSES)
_TOKEN_RUN = b"a" * 16
_KV_TAIL = re.compile(
    rb"(?:pass|pwd|secret|token|key|auth|cookie|credential|session|sig|jwt)[\w.-]*(?:\\?[\"'])?[ \t]*$"
)
_MIN_LEN = 8
_CACHE: dict[str, str] = {}
_CACHE_MAX_ITEMS = 4096
_CACHE_MAX_CHARS = 512
# Characters past a cut that masking still reads: more than any secret's recognisable context.
CUT_SLACK = 4096


def _keyword_before(lowered: bytes, classes: bytes, separator: bytes) -> bool:
    position = classes.find(separator)
    while position >= 0:
        if _KV_TAIL.search(lowered, max(0, position - 64), position):
            return True
        position = classes.find(separator, position + 1)
    return False


def _suspicious(text: str) -> bool:
    """Whether `text` may hold a secret; False means the full scan would find nothing."""
    raw = text.encode("utf-8", "surrogatepass")
    classes = raw.translate(_CLASS_TABLE)
    if _TOKEN_RUN in classes or (b"@" in classes and b"://" in raw):
        return True
    if b"earer" in raw or b"EARER" in raw or b"asic " in raw or b"ASIC " in raw or b"-----BEGIN" in raw:
        return True
    if b":" not in classes and b"=" not in classes:
        return False
    lowered = raw.lower()
    return _keyword_before(lowered, classes, b":") or _keyword_before(lowered, classes, b"=")


def mask_text(text: str) -> str:
    """`text` with every secret-shaped substring replaced by MASK; the rest is left as it was."""
    if len(text) < _MIN_LEN:
        return text
    cached = _CACHE.get(text)
    if cached is not None:
        return cached
    masked = _SECRET_RE.sub(_replace, text) if _suspicious(text) else text
    if len(text) <= _CACHE_MAX_CHARS:
        if len(_CACHE) >= _CACHE_MAX_ITEMS:
            _CACHE.clear()
        _CACHE[text] = masked
    return masked


_SENSITIVE_KEY = re.compile(
    r"pass(?:word|wd|phrase)|secret|token|authorization|apikey|cookie|privatekey|credential|accesskey"
    r"|accountkey|signature|session(?:id|key|token)|dbpass|^(?:pass|pwd|auth|sig|jwt|bearer)$|pass$"
)
_KEY_CACHE: dict[str, bool] = {}


def is_sensitive_key(key: str) -> bool:
    """Whether values under `key` are secrets (case and separator insensitive: `X-Api-Key`, `DB_PASS`)."""
    known = _KEY_CACHE.get(key)
    if known is None:
        normal = "".join(c for c in key.lower() if c.isalnum())
        known = _SENSITIVE_KEY.search(normal) is not None
        if len(_KEY_CACHE) >= _CACHE_MAX_ITEMS:
            _KEY_CACHE.clear()
        _KEY_CACHE[key] = known
    return known


_MAX_DEPTH = 24
_MAX_NODES = 5000


def mask_value(value: Any, *, jsonable: bool = False, max_chars: int | None = None) -> Any:
    """A copy of `value` with secrets masked, recursing into mappings and sequences by key.

    With `jsonable`, the result holds only JSON types (other objects become their masked repr);
    with `max_chars`, longer strings are cut there with a marker. Cycles and depth are bounded.
    """
    return _Walk(jsonable, max_chars).value(value, 0, False)


class _Walk:
    """One traversal: its options, the containers on the current path, and a node budget."""

    __slots__ = ("jsonable", "max_chars", "nodes", "path")

    def __init__(self, jsonable: bool, max_chars: int | None) -> None:
        self.jsonable = jsonable
        self.max_chars = max_chars
        self.nodes = 0
        self.path: set[int] = set()

    def value(self, value: Any, depth: int, secret: bool) -> Any:
        kind = type(value)
        if kind is str:
            return MASK if secret else self.text(value)
        if value is None or kind is bool or kind is int or kind is float:
            return self.number(value) if self.jsonable else value
        if secret:
            return MASK
        if isinstance(value, Mapping | list | tuple | set | frozenset):
            return self.container(value, depth)
        if isinstance(value, str):
            return self.text(str.__str__(value))
        return self.other(value) if self.jsonable else value

    def text(self, text: str) -> str:
        limit = self.max_chars
        if limit is not None and len(text) > limit:
            # Mask with some slack first, so a secret cut at the limit is still recognised whole.
            cut = mask_text(text[: limit + CUT_SLACK])[:limit]
            return f"{cut}...[truncated {len(text) - limit} chars]"
        return mask_text(text)

    def number(self, value: Any) -> Any:
        if type(value) is float and not math.isfinite(value):
            return str(value)
        if type(value) is int and value.bit_length() > 14000:
            return f"<int of {value.bit_length()} bits>"
        return value

    def container(self, value: Any, depth: int) -> Any:
        marker = id(value)
        if marker in self.path:
            return "[cycle]"
        if depth >= _MAX_DEPTH or self.nodes >= _MAX_NODES:
            return "[truncated: too deep or too large]"
        self.path.add(marker)
        try:
            if isinstance(value, Mapping):
                return self.mapping(value, depth)
            items = [self.item(item, depth) for item in value]
            return items if self.jsonable or isinstance(value, list) else type(value)(items)
        finally:
            self.path.discard(marker)

    def mapping(self, value: Mapping[Any, Any], depth: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key, item in value.items():
            self.nodes += 1
            if self.nodes > _MAX_NODES:
                out["[truncated]"] = f"{len(value) - len(out)} more items"
                break
            name = self.key(key)
            while name in out and name is not key:  # two masked keys must not merge into one
                name = f"{name}'"
            out[name] = self.value(item, depth + 1, type(key) is str and is_sensitive_key(key))
        return out

    def key(self, key: Any) -> Any:
        if type(key) is str:
            masked = mask_text(key)
            return key if masked == key else masked
        return self.text(str(key)) if self.jsonable else key

    def item(self, item: Any, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            return "[truncated]"
        # ("Authorization", "Bearer ...") pairs, as headers often come, are keyed too.
        if type(item) is tuple and len(item) == 2 and type(item[0]) is str and is_sensitive_key(item[0]):
            return [item[0], MASK] if self.jsonable else (item[0], MASK)
        return self.value(item, depth + 1, False)

    def other(self, value: Any) -> Any:
        if isinstance(value, datetime.date | datetime.time):
            return value.isoformat()
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, bytes | bytearray | memoryview):
            return self.text(bytes(value).decode("utf-8", "replace"))
        try:
            text = repr(value)
        except Exception as exc:  # noqa: BLE001 - a broken __repr__ must not break a log line
            text = f"<unrepresentable {type(value).__qualname__}: {type(exc).__name__}>"
        return self.text(text)
