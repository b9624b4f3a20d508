"""What we send verifies with the Standard Webhooks reference implementation, with every listed secret."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from shared.webhooks.signing import derive_secret, parse_versions, sign_headers

PEPPER = "p" * 40


def test_secrets_are_whsec_base64_of_32_bytes_per_key_and_version() -> None:
    secret = derive_secret(PEPPER, "0123456789ab", 1)
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert secret == derive_secret(PEPPER, "0123456789ab", 1)
    others = {derive_secret(PEPPER, "0123456789ac", 1), derive_secret(PEPPER, "0123456789ab", 2),
              derive_secret("q" * 40, "0123456789ab", 1)}
    assert secret not in others and len(others) == 3


def test_signed_headers_verify_with_standardwebhooks() -> None:
    secret = derive_secret(PEPPER, "0123456789ab", 1)
    body = '{"type":"generation.succeeded","timestamp":"2026-12-02T00:00:00.000Z","data":{"id":"gen_1","é":1}}'
    headers = sign_headers([secret], "msg_abc", body)
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(body, headers)["data"]["id"] == "gen_1"
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("gen_1", "gen_2"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(derive_secret(PEPPER, "0123456789ac", 1)).verify(body, headers)


def test_during_rotation_both_secrets_verify() -> None:
    old, new = (derive_secret(PEPPER, "0123456789ab", v) for v in (1, 2))
    headers = sign_headers([new, old], "msg_abc", "{}")
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify("{}", headers)
    Webhook(new).verify("{}", headers)


def test_the_timestamp_is_the_attempts_and_is_checked_by_receivers() -> None:
    secret = derive_secret(PEPPER, "0123456789ab", 1)
    stale = sign_headers([secret], "msg_abc", "{}", at=datetime.now(UTC) - timedelta(minutes=10))
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify("{}", stale)


def test_versions_parse_current_first() -> None:
    assert parse_versions("2, 1") == (2, 1)
    assert parse_versions("3,3,1") == (3, 1)
    with pytest.raises(ValueError):
        parse_versions("0")
