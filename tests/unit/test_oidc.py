"""Cloud Scheduler OIDC tokens, signed by a local key whose certificates a local server publishes."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import oidc
from shared.exceptions import ServiceUnavailableError, UnauthorizedError

AUDIENCE = "https://scheduling.example.run.app/v1/schedules:tick"
SCHEDULER_SA = "scheduler@genmedia-test.iam.gserviceaccount.com"


class SigningKey:
    """An RSA key, its self-signed certificate (the PEM x509 Google's v1 endpoint serves) and a signer."""

    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test.googleusercontent.com")])
        now = datetime.now(UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self.private.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
                .sign(self.private, hashes.SHA256()))
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        pem = self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
        self.signer = crypt.RSASigner.from_string(pem, key_id=kid)  # type: ignore[no-untyped-call]

    def token(self, **overrides: Any) -> str:
        now = int(time.time())
        claims = {"iss": "https://accounts.google.com", "aud": AUDIENCE, "sub": "1234567890",
                  "email": SCHEDULER_SA, "email_verified": True, "iat": now, "exp": now + 3600}
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        token: bytes = jwt.encode(self.signer, claims)  # type: ignore[no-untyped-call]
        return token.decode()


class CertsServer:
    """Serves `{kid: PEM certificate}` like https://www.googleapis.com/oauth2/v1/certs, counting fetches."""

    def __init__(self, keys: list[SigningKey]) -> None:
        self.document = {key.kid: key.cert_pem for key in keys}
        self.fetches = 0
        self.status = 200
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                body = json.dumps(server.document).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "public, max-age=19800, must-revalidate, no-transform")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/oauth2/v1/certs"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def google_key() -> SigningKey:
    return SigningKey("google-kid-1")


@pytest.fixture(scope="module")
def attacker_key() -> SigningKey:
    return SigningKey("google-kid-1")  # same kid, other key: a forged signature


@pytest.fixture
def certs(google_key: SigningKey) -> Iterator[CertsServer]:
    oidc.clear_certs_cache()
    server = CertsServer([google_key])
    yield server
    server.close()
    oidc.clear_certs_cache()


def verify(certs: CertsServer, header: str | None, **kwargs: Any) -> dict[str, Any]:
    return oidc.verify_scheduler_token(header, audience=AUDIENCE, certs_url=certs.url, **kwargs)


def test_valid_token_yields_its_claims(certs: CertsServer, google_key: SigningKey) -> None:
    claims = verify(certs, f"Bearer {google_key.token()}", expected_email=SCHEDULER_SA)
    assert claims["email"] == SCHEDULER_SA
    assert claims["aud"] == AUDIENCE


def test_both_google_issuer_spellings_are_accepted(certs: CertsServer, google_key: SigningKey) -> None:
    assert verify(certs, f"Bearer {google_key.token(iss='accounts.google.com')}")["sub"] == "1234567890"


def test_certificates_are_fetched_once_and_cached(certs: CertsServer, google_key: SigningKey) -> None:
    for _ in range(5):
        verify(certs, f"Bearer {google_key.token()}")
    assert certs.fetches == 1


def assert_rejected(certs: CertsServer, header: str | None, message_part: str = "", **kwargs: Any) -> None:
    with pytest.raises(UnauthorizedError) as caught:
        verify(certs, header, **kwargs)
    err = caught.value
    assert err.http_status == 401
    assert message_part in err.message
    token = (header or "").removeprefix("Bearer ")
    if len(token) > 10:
        assert token not in str(err) and token[:20] not in (err.detail or "")


def test_expired_token_is_rejected(certs: CertsServer, google_key: SigningKey) -> None:
    old = int(time.time()) - 7200
    assert_rejected(certs, f"Bearer {google_key.token(iat=old, exp=old + 3600)}", "expired")


def test_small_clock_skew_is_tolerated(certs: CertsServer, google_key: SigningKey) -> None:
    now = int(time.time())
    assert verify(certs, f"Bearer {google_key.token(iat=now - 3600, exp=now - 5)}")


def test_token_issued_in_the_future_is_rejected(certs: CertsServer, google_key: SigningKey) -> None:
    later = int(time.time()) + 600
    assert_rejected(certs, f"Bearer {google_key.token(iat=later, exp=later + 3600)}")


def test_wrong_audience_is_rejected(certs: CertsServer, google_key: SigningKey) -> None:
    assert_rejected(certs, f"Bearer {google_key.token(aud='https://elsewhere.example')}", "audience")


def test_wrong_issuer_is_rejected(certs: CertsServer, google_key: SigningKey) -> None:
    assert_rejected(certs, f"Bearer {google_key.token(iss='https://evil.example')}", "issued")


def test_signature_by_another_key_is_rejected(certs: CertsServer, attacker_key: SigningKey) -> None:
    assert_rejected(certs, f"Bearer {attacker_key.token()}")


def test_unknown_key_id_is_rejected(certs: CertsServer) -> None:
    assert_rejected(certs, f"Bearer {SigningKey('rotated-away').token()}")


def test_unsigned_alg_none_token_is_rejected(certs: CertsServer) -> None:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"iss": "https://accounts.google.com", "aud": AUDIENCE, "iat": now, "exp": now + 600}
    assert_rejected(certs, f"Bearer {part({'alg': 'none', 'kid': 'google-kid-1'})}.{part(claims)}.c2ln")


def test_tampered_claims_are_rejected(certs: CertsServer, google_key: SigningKey) -> None:
    header, _, signature = google_key.token(aud="https://elsewhere.example").split(".")
    claims = json.loads(base64.urlsafe_b64decode(google_key.token().split(".")[1] + "=="))
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert_rejected(certs, f"Bearer {header}.{forged}.{signature}")


def test_other_service_account_is_rejected(certs: CertsServer, google_key: SigningKey) -> None:
    token = google_key.token(email="intruder@other.iam.gserviceaccount.com")
    assert_rejected(certs, f"Bearer {token}", "service account", expected_email=SCHEDULER_SA)


def test_unverified_email_is_rejected(certs: CertsServer, google_key: SigningKey) -> None:
    token = google_key.token(email_verified=False)
    assert_rejected(certs, f"Bearer {token}", "service account", expected_email=SCHEDULER_SA)


def test_missing_email_is_rejected_when_one_is_expected(certs: CertsServer, google_key: SigningKey) -> None:
    token = google_key.token(email=None, email_verified=None)
    assert_rejected(certs, f"Bearer {token}", expected_email=SCHEDULER_SA)


@pytest.mark.parametrize("header", [
    None, "", "Bearer", "Basic abc", "Bearer not-a-jwt", "Bearer a.b", "Bearer a.b.c.d", "Bearer a.b.c",
    "Bearer eyJhbGciOiJSUzI1NiJ9.eyJ4Ijp7fX0.!!!!", "Bearer " + "a" * 9000 + ".b.c",
    "Bearer gm_0123456789ab_" + "A" * 43,
])
def test_malformed_headers_are_rejected_without_fetching_on_obvious_garbage(
        certs: CertsServer, header: str | None) -> None:
    assert_rejected(certs, header)


def test_unreachable_certificates_are_a_retryable_503(google_key: SigningKey) -> None:
    oidc.clear_certs_cache()
    server = CertsServer([google_key])
    server.status = 500
    try:
        with pytest.raises(ServiceUnavailableError) as caught:
            verify(server, f"Bearer {google_key.token()}")
    finally:
        server.close()
        oidc.clear_certs_cache()
    assert caught.value.http_status == 503 and caught.value.retryable


def test_a_failed_fetch_is_not_cached(certs: CertsServer, google_key: SigningKey) -> None:
    certs.status = 500
    with pytest.raises(ServiceUnavailableError):
        verify(certs, f"Bearer {google_key.token()}")
    certs.status = 200
    assert verify(certs, f"Bearer {google_key.token()}")


def test_audience_must_be_configured(certs: CertsServer, google_key: SigningKey) -> None:
    with pytest.raises(ValueError):
        oidc.verify_scheduler_token(f"Bearer {google_key.token()}", audience="", certs_url=certs.url)


_segment = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1,
                   max_size=60)


@pytest.fixture(scope="module")
def fuzz_certs(google_key: SigningKey) -> Iterator[CertsServer]:
    server = CertsServer([google_key])
    yield server
    server.close()


@settings(max_examples=300, deadline=None)
@given(header=st.one_of(
    st.text(max_size=100),
    st.tuples(_segment, _segment, _segment).map(lambda p: "Bearer " + ".".join(p)),
    st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5), st.none()))
    .map(lambda d: "Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6Imdvb2dsZS1raWQtMSJ9."
         + base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode() + ".c2ln"),
))
def test_fuzzed_tokens_only_ever_fail_as_401(fuzz_certs: CertsServer, header: str) -> None:
    with pytest.raises(UnauthorizedError):
        verify(fuzz_certs, header)
