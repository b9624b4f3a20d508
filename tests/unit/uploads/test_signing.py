"""Cloud upload URLs: V4 signed PUTs that bind the declared type and size, so Cloud Storage itself
refuses another type or size (signed here with a throwaway key instead of IAM signBlob)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.oauth2 import service_account

from shared.uploads.signing import UploadSigningError, put_headers, signed_put_url
from shared.uploads.store import GcsUploadStore


@pytest.fixture
def key_credentials() -> service_account.Credentials:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return service_account.Credentials.from_service_account_info({  # type: ignore[no-untyped-call]
        "type": "service_account", "client_email": "generation@genmedia-test.iam.gserviceaccount.com",
        "private_key": pem, "private_key_id": "k1", "token_uri": "https://oauth2.googleapis.com/token",
        "project_id": "genmedia-test"})


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> GcsUploadStore:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")  # no credentials lookup, no call made
    return GcsUploadStore("genmedia-test-outputs", "genmedia-test")


def test_the_url_signs_type_size_and_expiry(store: GcsUploadStore, key_credentials: object) -> None:
    url = signed_put_url(store, "uploads/upl_abc", "image/png", 12345, ttl_seconds=900,
                         credentials=key_credentials, endpoint="https://storage.googleapis.com")
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert parts.path == "/genmedia-test-outputs/uploads/upl_abc"
    assert query["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256" and query["X-Goog-Expires"] == "900"
    assert query["X-Goog-SignedHeaders"] == "content-type;host;x-goog-content-length-range"
    assert query["X-Goog-Credential"].startswith("generation@genmedia-test.iam.gserviceaccount.com/")
    assert len(query["X-Goog-Signature"]) == 512  # 2048-bit RSA, hex


def test_the_headers_a_client_must_send_match_what_is_signed() -> None:
    assert put_headers("image/jpeg", 7) == {"Content-Type": "image/jpeg", "x-goog-content-length-range": "7,7"}


def test_without_a_service_account_to_sign_as_it_is_a_503(store: GcsUploadStore,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.uploads import signing

    class NoAccount:
        valid, token, service_account_email = True, "t", "default"

    monkeypatch.setattr(signing, "_default_credentials", lambda: NoAccount())
    with pytest.raises(UploadSigningError) as caught:
        signed_put_url(store, "uploads/upl_abc", "image/png", 1, ttl_seconds=60)
    assert caught.value.http_status == 503 and caught.value.reason == "UPLOAD_SIGNING_UNAVAILABLE"
