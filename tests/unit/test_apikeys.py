"""API key parsing and verification against an in-memory key store, plus a fuzz of the header."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import apikeys
from shared.apikeys import ApiKeyRecord, Principal
from shared.exceptions import ForbiddenError, UnauthorizedError

PEPPER = "unit-test-pepper-0123456789abcdef"
# Every message verification can produce: none of them can carry any part of the header.
MESSAGES = {
    "an API key is required: send it as a Bearer token in the Authorization header",
    "the Authorization header must be 'Bearer <api key>'",
    "the API key is not valid",
    "the API key was revoked",
    "the API key has expired",
    "the API key lacks the 'generate' scope this route needs",
}


class KeyStore:
    """A KeyLoader over a dict, counting lookups so tests can see the cache work."""

    def __init__(self) -> None:
        self.records: dict[str, ApiKeyRecord] = {}
        self.lookups = 0

    def __call__(self, key_id: str) -> ApiKeyRecord | None:
        self.lookups += 1
        return self.records.get(key_id)

    def add(self, scopes: set[str], **fields: datetime | None) -> str:
        """Store a new key the way the database does (HMAC-SHA256(pepper, secret)); return the key."""
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        digest = hmac.new(PEPPER.encode(), secret.encode(), hashlib.sha256).hexdigest()
        self.records[key_id] = ApiKeyRecord(key_id, f"key-{key_id}", frozenset(scopes), digest,
                                            datetime.now(UTC), **fields)
        return f"gm_{key_id}_{secret}"


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    apikeys.clear_key_cache()
    yield
    apikeys.clear_key_cache()


@pytest.fixture
def store() -> KeyStore:
    return KeyStore()


def verify(store: KeyStore, header: str | None, scope: str = "generate", **kwargs: object) -> Principal:
    return apikeys.verify(store, header, scope, pepper=PEPPER, **kwargs)  # type: ignore[arg-type]


def test_valid_key_yields_its_principal(store: KeyStore) -> None:
    key = store.add({"generate", "batch"})
    principal = verify(store, f"Bearer {key}", "batch")
    assert principal.key_id == key[3:15]
    assert principal.scopes == frozenset({"generate", "batch"})


def test_scheme_is_case_insensitive_and_whitespace_tolerated(store: KeyStore) -> None:
    key = store.add({"generate"})
    assert verify(store, f"  bEaReR   {key} ").key_id == key[3:15]


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_header_is_401_unauthenticated(store: KeyStore, header: str | None) -> None:
    with pytest.raises(UnauthorizedError) as caught:
        verify(store, header)
    assert type(caught.value) is UnauthorizedError
    assert apikeys.www_authenticate(caught.value) == 'Bearer realm="genmedia"'


@pytest.mark.parametrize("header", [
    "Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "gm_0123456789ab_" + "A" * 43, "Bearer gm_",
    "Bearer gm_0123456789AB_" + "A" * 43, "Bearer gm_0123456789ab_" + "A" * 42,
    "Bearer gm_0123456789ab_" + "A" * 44, "Bearer gm_0123456789ab-" + "A" * 43,
    "Bearer xx_0123456789ab_" + "A" * 43, "Bearer gm_0123456789ab_" + "A" * 42 + "=",
    "Bearer a b", "Bearer\tgm_0123456789ab_" + "A" * 43, "Bearer " + "x" * 10_000,
])
def test_malformed_header_is_401_invalid_without_echoing_it(store: KeyStore, header: str) -> None:
    with pytest.raises(apikeys.InvalidApiKeyError) as caught:
        verify(store, header)
    err = caught.value
    assert (err.http_status, err.reason) == (401, "API_KEY_INVALID")
    assert str(err) in MESSAGES
    assert "invalid_token" in (apikeys.www_authenticate(err) or "")
    assert store.lookups == 0


def test_unknown_key_id_is_401(store: KeyStore) -> None:
    with pytest.raises(apikeys.InvalidApiKeyError):
        verify(store, "Bearer gm_0123456789ab_" + "A" * 43)


def test_wrong_secret_is_401_and_indistinguishable_from_unknown_id(store: KeyStore) -> None:
    key = store.add({"generate"})
    forged = key[:-1] + ("A" if key[-1] != "A" else "B")
    with pytest.raises(apikeys.InvalidApiKeyError) as wrong:
        verify(store, f"Bearer {forged}")
    with pytest.raises(apikeys.InvalidApiKeyError) as unknown:
        verify(store, "Bearer gm_0123456789ab_" + "A" * 43)
    assert (wrong.value.message, wrong.value.reason) == (unknown.value.message, unknown.value.reason)


def test_other_pepper_does_not_verify(store: KeyStore) -> None:
    key = store.add({"generate"})
    with pytest.raises(apikeys.InvalidApiKeyError):
        apikeys.verify(store, f"Bearer {key}", "generate", pepper="another-pepper")


def test_revoked_key_is_403_revoked(store: KeyStore) -> None:
    key = store.add({"generate"}, revoked_at=datetime.now(UTC))
    with pytest.raises(apikeys.ApiKeyRevokedError) as caught:
        verify(store, f"Bearer {key}")
    assert (caught.value.http_status, caught.value.reason) == (403, "API_KEY_REVOKED")


def test_expired_key_is_403_expired(store: KeyStore) -> None:
    key = store.add({"generate"}, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(apikeys.ApiKeyExpiredError) as caught:
        verify(store, f"Bearer {key}")
    assert (caught.value.http_status, caught.value.reason) == (403, "API_KEY_EXPIRED")


def test_expiry_is_checked_on_every_request_even_from_the_cache(store: KeyStore) -> None:
    expires = datetime.now(UTC) + timedelta(minutes=5)
    key = store.add({"generate"}, expires_at=expires)
    verify(store, f"Bearer {key}")
    with pytest.raises(apikeys.ApiKeyExpiredError):
        verify(store, f"Bearer {key}", now=expires)
    assert store.lookups == 1


def test_missing_scope_is_403_naming_the_scope(store: KeyStore) -> None:
    key = store.add({"generate"})
    with pytest.raises(apikeys.InsufficientScopeError) as caught:
        verify(store, f"Bearer {key}", "schedule")
    err = caught.value
    assert (err.http_status, err.reason) == (403, "INSUFFICIENT_SCOPE")
    assert "schedule" in err.message
    assert apikeys.www_authenticate(err) == (
        'Bearer realm="genmedia", error="insufficient_scope", scope="schedule"')


@pytest.mark.parametrize("scope", sorted(apikeys.SCOPES))
def test_admin_implies_every_scope(store: KeyStore, scope: str) -> None:
    key = store.add({"admin"})
    assert verify(store, f"Bearer {key}", scope).has_scope(scope)


def test_unknown_scope_is_a_programming_error(store: KeyStore) -> None:
    key = store.add({"admin"})
    with pytest.raises(ValueError):
        verify(store, f"Bearer {key}", "everything")


def test_verified_keys_are_cached_so_repeats_skip_the_store(store: KeyStore) -> None:
    key = store.add({"generate"})
    for _ in range(5):
        verify(store, f"Bearer {key}")
    assert store.lookups == 1


def test_the_cache_never_accepts_a_wrong_secret_for_a_cached_id(store: KeyStore) -> None:
    key = store.add({"generate"})
    verify(store, f"Bearer {key}")
    forged = key[:-1] + ("A" if key[-1] != "A" else "B")
    with pytest.raises(apikeys.InvalidApiKeyError):
        verify(store, f"Bearer {forged}")
    assert verify(store, f"Bearer {key}").key_id == key[3:15]


def test_unknown_ids_and_wrong_secrets_cost_one_lookup_per_cache_period(store: KeyStore) -> None:
    key = store.add({"generate"})
    unknown = "gm_0123456789ab_" + key[16:]
    wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
    for header in (unknown, wrong):
        before = store.lookups
        for _ in range(5):
            with pytest.raises(apikeys.InvalidApiKeyError):
                verify(store, f"Bearer {header}")
        assert store.lookups - before <= 1  # then answered from the cache, both alike
    assert verify(store, f"Bearer {key}").key_id == key[3:15]


def test_cache_can_be_disabled(store: KeyStore) -> None:
    key = store.add({"generate"})
    verify(store, f"Bearer {key}", cache_seconds=0)
    verify(store, f"Bearer {key}", cache_seconds=0)
    assert store.lookups == 2


def test_presents_api_key_tells_keys_from_other_bearer_tokens() -> None:
    assert apikeys.presents_api_key("Bearer gm_0123456789ab_x")
    assert not apikeys.presents_api_key("Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig")
    assert not apikeys.presents_api_key(None)
    assert not apikeys.presents_api_key("gm_0123456789ab_x")


# --- fuzz ----------------------------------------------------------------------------------------

_KEY_ALPHABET = string.ascii_letters + string.digits + "_-"


def _near_misses(key: str) -> st.SearchStrategy[str]:
    """Keys one edit away from the valid one: a changed, dropped or added character, or case."""
    positions = st.integers(min_value=0, max_value=len(key) - 1)
    changed = st.tuples(positions, st.sampled_from(_KEY_ALPHABET)).filter(
        lambda pc: key[pc[0]] != pc[1]).map(lambda pc: key[:pc[0]] + pc[1] + key[pc[0] + 1:])
    dropped = positions.map(lambda i: key[:i] + key[i + 1:])
    added = st.tuples(positions, st.sampled_from(_KEY_ALPHABET)).map(
        lambda pc: key[:pc[0]] + pc[1] + key[pc[0]:])
    return st.one_of(changed, dropped, added, st.just(key.upper()), st.just(key[:-1]))


_FUZZ_STORE = KeyStore()
_VALID = _FUZZ_STORE.add({"generate"})
_OTHER = _FUZZ_STORE.add({"batch"})

_headers: st.SearchStrategy[object] = st.one_of(
    st.none(),
    st.text(),
    st.binary(),  # what a caller passing raw header bytes would hand over
    st.binary().map(lambda b: b.decode("latin-1")),
    st.text().map(lambda t: f"Bearer {t}"),
    st.text(alphabet=_KEY_ALPHABET, max_size=80).map(lambda t: f"Bearer gm_{t}"),
    st.from_regex(r"\ABearer gm_[0-9a-f]{12}_[A-Za-z0-9_-]{43}\Z"),
    _near_misses(_VALID).map(lambda k: f"Bearer {k}"),
    _near_misses(_VALID),
    st.just(f"Bearer {_OTHER}"),
    st.just(f"Basic {_VALID}"),
    st.just(f"Bearer {_VALID} {_VALID}"),
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=_headers, use_cache=st.booleans())
def test_fuzzed_headers_never_verify_without_the_valid_key(header: object, use_cache: bool) -> None:
    if use_cache:  # the valid key is cached, so forgeries also meet the cache path
        apikeys.verify(_FUZZ_STORE, f"Bearer {_VALID}", "generate", pepper=PEPPER)
    try:
        principal = apikeys.verify(_FUZZ_STORE, header, "generate", pepper=PEPPER,  # type: ignore[arg-type]
                                   cache_seconds=10.0 if use_cache else 0)
    except (UnauthorizedError, ForbiddenError) as err:
        assert err.http_status in (401, 403)
        assert str(err) in MESSAGES
        return
    assert isinstance(header, str) and header.split()[-1] == _VALID
    assert principal.key_id == _VALID[3:15]
