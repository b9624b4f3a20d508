"""Standard Webhooks signatures, with one secret per API key derived from API_KEY_PEPPER.

Nothing is stored: a key's secret is HMAC-SHA256(pepper, "genmedia/webhook-secret/v{N}/{key id}"),
so every function that has the pepper can sign, and the label keeps it unrelated to the hashes of the
API keys themselves (HMAC-SHA256(pepper, key secret)). Rotation: WEBHOOK_SECRET_VERSIONS lists the
versions to sign with, current first ("2,1"); `GET /v1/webhooks/secret` shows the current one, and
every delivery carries one signature per listed version (the spec allows several, space-separated),
so receivers keep verifying with the old secret until they switch. Then drop the old version.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"


def derive_secret(pepper: str, key_id: str, version: int) -> str:
    """The `whsec_...` secret of one API key at one version."""
    label = f"genmedia/webhook-secret/v{version}/{key_id}".encode()
    raw = hmac.new(pepper.encode(), label, hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(raw).decode()


def parse_versions(text: str) -> tuple[int, ...]:
    """`"2,1"` -> (2, 1): the versions to sign with, current first (repeats dropped)."""
    versions = tuple(dict.fromkeys(int(part) for part in text.split(",") if part.strip()))
    if not versions or any(v < 1 for v in versions):
        raise ValueError("must be positive version numbers, current first, e.g. 2,1")
    return versions


def sign_headers(secrets: list[str], webhook_id: str, body: str, *, at: datetime | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt, signed with each secret."""
    when = (at or datetime.now(UTC)).astimezone(UTC)
    signatures = " ".join(Webhook(secret).sign(webhook_id, when, body) for secret in secrets)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signatures,
    }
