"""What the HTTP functions need of webhooks: check a given `webhook_url`, show a caller its secret,
and show a job's or batch's delivery state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import flask
from pydantic import BaseModel

from shared.config import get_settings
from shared.exceptions import ServiceUnavailableError, ValidationError
from shared.http_api import Router, json_response
from shared.webhooks import ssrf
from shared.webhooks.signing import derive_secret, parse_versions

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from shared.apikeys import Principal
    from shared.webhooks.deliveries import WebhookStatus

FIELD = "webhook_url"


class WebhookSecret(BaseModel):
    """`GET /v1/webhooks/secret`: the secret that signs this API key's webhooks (Standard Webhooks)."""

    secret: str


class HasWebhook(Protocol):
    """A job or batch view."""

    id: str
    webhook: WebhookStatus | None


def check_webhook_url(url: str | None, *, field: str = FIELD) -> str | None:
    """The URL if it may be called (now; it is checked again at each send), else a 400 naming the field."""
    if url is None:
        return None
    try:
        ssrf.check_url(url, allow_private=get_settings().webhook_allow_private)
    except ssrf.UnsafeUrlError as err:
        raise ValidationError.for_field(field, str(err), reason="WEBHOOK_URL_REJECTED") from None
    return url


def secret_for(key_id: str) -> WebhookSecret:
    """The current secret of one API key, derived from API_KEY_PEPPER (nothing stored)."""
    settings = get_settings()
    if settings.api_key_pepper is None:
        raise ServiceUnavailableError("webhooks are not configured on this deployment")
    current = parse_versions(settings.webhook_secret_versions)[0]
    return WebhookSecret(secret=derive_secret(settings.api_key_pepper.get_secret_value(), key_id, current))


def webhook_secret(request: flask.Request, principal: Principal) -> flask.Response:
    """The caller's webhook signing secret (`whsec_...`), for any valid API key."""
    return json_response(secret_for(principal.key_id).model_dump())


def register_webhook_routes(router: Router) -> None:
    """`GET /v1/webhooks/secret` on a function's router."""
    router.route("GET", "/v1/webhooks/secret", scope="any")(webhook_secret)


def attach_status(session: Session, views: list[HasWebhook]) -> None:
    """Fill in `webhook` ({state, attempts}) on jobs or batches that have one, in one query."""
    from shared.webhooks.deliveries import statuses

    found = statuses(session, [view.id for view in views])
    for view in views:
        view.webhook = found.get(view.id)
