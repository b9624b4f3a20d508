"""API keys in PostgreSQL: only a keyed hash is stored, revocation and expiry hold, the CLI mints keys."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import apikeys
from shared.database import session_scope
from shared.exceptions import ForbiddenError, QueryError, UnauthorizedError, ValidationError
from tests.conftest import ROOT, DatabaseHandle

PEPPER = "integration-test-pepper-0123456789"


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    apikeys.clear_key_cache()
    yield
    apikeys.clear_key_cache()


def mint(scopes: list[str], **kwargs: datetime | None) -> str:
    with session_scope() as session:
        key, _ = apikeys.create_key(session, "test", scopes, pepper=PEPPER, **kwargs)
    return key


def verify_db(key: str, scope: str = "generate", cache_seconds: float = 10.0) -> apikeys.Principal:
    return apikeys.verify(apikeys.load_key_from_db, f"Bearer {key}", scope, pepper=PEPPER,
                          cache_seconds=cache_seconds)


def test_created_key_has_the_documented_shape_and_only_its_keyed_hash_is_stored(db: DatabaseHandle) -> None:
    with session_scope() as session:
        key, record = apikeys.create_key(session, "ci", ["batch", "generate"], pepper=PEPPER)
    prefix, key_id, secret = key[:3], key[3:15], key[16:]
    assert (prefix, key[15], key_id) == ("gm_", "_", record.id)
    assert len(secret) == 43  # token_urlsafe(32): 256 bits
    with session_scope() as session:
        row = session.execute(sa.text("SELECT * FROM api_keys")).mappings().one()
    assert row["secret_hash"] == hmac.new(PEPPER.encode(), secret.encode(), hashlib.sha256).hexdigest()
    assert all(secret not in str(value) for value in row.values())
    assert sorted(row["scopes"]) == ["batch", "generate"]
    assert row["expires_at"] is None and row["revoked_at"] is None


def test_keys_are_unique(db: DatabaseHandle) -> None:
    keys = {mint(["generate"]) for _ in range(20)}
    assert len(keys) == 20 and len({k[3:15] for k in keys}) == 20


def test_key_verifies_through_a_session_and_through_the_db_loader(db: DatabaseHandle) -> None:
    key = mint(["generate"])
    with session_scope() as session:
        assert apikeys.verify(session, f"Bearer {key}", "generate", pepper=PEPPER).key_id == key[3:15]
    apikeys.clear_key_cache()
    assert verify_db(key).name == "test"


@pytest.mark.parametrize("scopes", [[], ["everything"], ["generate", "root"]])
def test_unknown_or_no_scopes_are_refused(db: DatabaseHandle, scopes: list[str]) -> None:
    with pytest.raises(ValidationError):
        mint(scopes)


def test_the_schema_refuses_bad_rows_written_around_the_code(db: DatabaseHandle) -> None:
    bad_rows = [
        "('0123456789ab', 'x', '[\"root\"]', repeat('a', 64))",
        "('0123456789ab', 'x', '[]', repeat('a', 64))",
        "('NOT-HEX', 'x', '[\"generate\"]', repeat('a', 64))",
        "('0123456789ab', 'x', '[\"generate\"]', 'plaintext-secret')",
    ]
    for values in bad_rows:
        with pytest.raises(QueryError, match="api_keys_"), session_scope() as session:
            session.execute(sa.text(f"INSERT INTO api_keys (id, name, scopes, secret_hash) VALUES {values}"))


def test_revocation_on_this_instance_is_immediate(db: DatabaseHandle) -> None:
    key = mint(["generate"])
    verify_db(key)  # now cached
    with session_scope() as session:
        assert apikeys.revoke_key(session, key[3:15]) is True
        assert apikeys.revoke_key(session, key[3:15]) is True  # idempotent
    with pytest.raises(apikeys.ApiKeyRevokedError):
        verify_db(key)


def test_revoking_an_unknown_key_says_so(db: DatabaseHandle) -> None:
    with session_scope() as session:
        assert apikeys.revoke_key(session, "0123456789ab") is False


def test_revocation_by_another_instance_takes_effect_within_the_cache_ttl(db: DatabaseHandle) -> None:
    key = mint(["generate"])
    verify_db(key, cache_seconds=0.5)
    with session_scope() as session:  # another instance: the row changes, this cache does not know
        session.execute(sa.text("UPDATE api_keys SET revoked_at = now()"))
    verify_db(key, cache_seconds=0.5)
    time.sleep(0.6)
    with pytest.raises(apikeys.ApiKeyRevokedError):
        verify_db(key, cache_seconds=0.5)


def test_expired_key_is_forbidden(db: DatabaseHandle) -> None:
    key = mint(["generate"], expires_at=datetime.now(UTC) - timedelta(minutes=1))
    with pytest.raises(apikeys.ApiKeyExpiredError):
        verify_db(key)


def test_unknown_key_is_unauthorized(db: DatabaseHandle) -> None:
    with pytest.raises(apikeys.InvalidApiKeyError):
        verify_db("gm_0123456789ab_" + "A" * 43)


_VALID_KEYS: dict[str, str] = {}


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(header=st.one_of(
    st.text(max_size=80),
    st.from_regex(r"\ABearer gm_[0-9a-f]{12}_[A-Za-z0-9_-]{43}\Z"),
    st.integers(0, 58).flatmap(lambda i: st.tuples(st.just(i), st.sampled_from("aZ09_-"))),
))
def test_fuzzed_headers_never_verify_against_the_database(db: DatabaseHandle, header: object) -> None:
    key = _VALID_KEYS.setdefault(db.url, mint(["generate"]))
    if isinstance(header, tuple):  # a one-character edit of the real key
        i, char = header
        header = "Bearer " + key[:i] + char + key[i + 1:]
    try:
        principal = apikeys.verify(apikeys.load_key_from_db, str(header), "generate", pepper=PEPPER)
    except (UnauthorizedError, ForbiddenError):
        return
    assert str(header) == f"Bearer {key}" and principal.key_id == key[3:15]


def test_cli_prints_the_key_alone_on_its_last_line_and_it_verifies(db: DatabaseHandle) -> None:
    env = {**os.environ, "DATABASE_URL": db.url, "API_KEY_PEPPER": PEPPER, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "devtools.api_key", "ci-bot", "--scopes", "generate,batch",
         "--expires-in-days", "30"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1]
    assert done.stdout.strip() == key
    principal = verify_db(key, "batch")
    assert principal.name == "ci-bot" and principal.scopes == {"generate", "batch"}
    with session_scope() as session:
        expires = session.execute(sa.text("SELECT expires_at FROM api_keys")).scalar_one()
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    assert key not in done.stderr


def test_cli_refuses_unknown_scopes_in_one_line(db: DatabaseHandle) -> None:
    env = {**os.environ, "DATABASE_URL": db.url, "API_KEY_PEPPER": PEPPER, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "devtools.api_key", "x", "--scopes", "root"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and "scopes" in done.stderr
