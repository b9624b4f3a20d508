"""Who may call a route and how often: API keys, Cloud Scheduler's OIDC token, and rate limits.

The HTTP layer calls `authenticate` before a handler runs (routes declare their scope) and the
handler calls `limit` once it knows the cost (a batch costs its items).
"""

from __future__ import annotations

import flask

from shared import apikeys, context, oidc, ratelimit
from shared.apikeys import Principal
from shared.config import get_settings

FAMILY_LIMITS = {
    "generate": "rate_limit_generate",
    "batch": "rate_limit_batch_items",
    "schedule": "rate_limit_schedule",
    "read": "rate_limit_read",
}
SCHEDULER = Principal(key_id="cloud-scheduler", name="cloud-scheduler", scopes=frozenset({"admin"}))


def _pepper() -> str:
    pepper = get_settings().api_key_pepper
    assert pepper is not None, "checked at start-up"
    return pepper.get_secret_value()


def authenticate(request: flask.Request, scope: str) -> Principal:
    """The API key's principal (401/403 otherwise); its key id becomes `user_id` in the logs."""
    settings = get_settings()
    principal = apikeys.verify(
        apikeys.load_key_from_db, request.headers.get("Authorization"), scope,
        pepper=_pepper(), cache_seconds=settings.api_key_cache_seconds,
    )
    context.bind(user_id=principal.key_id)
    return principal


def authenticate_tick(request: flask.Request) -> Principal:
    """`:tick` takes Cloud Scheduler's OIDC token, or an API key with the admin scope."""
    settings = get_settings()
    header = request.headers.get("Authorization")
    if apikeys.presents_api_key(header) or not settings.scheduler_audience:
        return authenticate(request, "admin")
    oidc.verify_scheduler_token(
        header, audience=settings.scheduler_audience, certs_url=settings.scheduler_certs_url,
        expected_email=settings.scheduler_service_account,
    )
    context.bind(user_id=SCHEDULER.key_id)
    return SCHEDULER


def require_scope(principal: Principal, scope: str) -> None:
    """403 unless the key also holds `scope` (a schedule needs the scope of what it will run)."""
    if not principal.has_scope(scope):
        raise apikeys.InsufficientScopeError(f"the API key lacks the '{scope}' scope this request needs",
                                             metadata={"required_scope": scope})


def family_limit(family: str) -> int:
    """The per-window limit of a route family (`generate`, `batch`, ...); 0 means no limit."""
    return int(getattr(get_settings(), FAMILY_LIMITS[family]))


def limit(principal: Principal, family: str, cost: int = 1) -> None:
    """Spend `cost` from the principal's budget for `family` in this window, or raise 429."""
    allowed = family_limit(family)
    if allowed == 0:
        return
    ratelimit.enforce_rate_limit(principal.key_id, family, cost, allowed, get_settings().rate_limit_window_seconds)
