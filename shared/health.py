"""`/healthz` (liveness, no I/O) and `/readyz` (a deep check: database, schema, breakers, config)."""

from __future__ import annotations

import flask

from shared.config import get_settings
from shared.exceptions import GenmediaError, ServiceUnavailableError
from shared.http_api import Router, json_response

# The Alembic head this code was written for; a test keeps it equal to migrations/versions.
SCHEMA_REVISION = "0013_results"


def healthz(request: flask.Request) -> flask.Response:
    """Liveness: the process serves requests. Touches nothing else."""
    return json_response({"status": "ok"})


def _schema_version(timeout_ms: int = 2000) -> str | None:
    """The database's Alembic revision, read under a short statement timeout: reachable and migrated,
    in one transaction."""
    from sqlalchemy import text

    from shared.database import session_scope

    with session_scope() as session:
        session.execute(text(f"SET LOCAL statement_timeout = {int(timeout_ms)}"))
        version: str | None = session.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()
    return version


def _schema() -> str:
    version = _schema_version()
    return "ok" if version == SCHEMA_REVISION else f"at {version}, code expects {SCHEMA_REVISION}"


def readiness() -> dict[str, object]:
    """Every check, for an admin: raises ServiceUnavailableError (503) naming the failing ones."""
    from shared.breaker import states
    from shared.database import check_health  # SQLAlchemy loads with the first readiness check

    checks: dict[str, object] = {"config": get_settings().startup_problem() or "ok"}
    try:
        checks.update(check_health())
        checks["schema"] = _schema()
    except GenmediaError:
        checks["database"] = "unreachable"
    # An open breaker is reported, not failed on: this instance is fine, Vertex AI is not.
    checks["breakers"] = states()
    failing = [name for name in ("config", "database", "schema") if checks.get(name) != "ok"]
    if failing:
        raise ServiceUnavailableError(f"not ready: {', '.join(failing)}", metadata={"failing": ",".join(failing)})
    return checks


def is_ready() -> bool:
    """Ready or not, and nothing more: configured, the database answers, the schema is this code's."""
    if get_settings().startup_problem():
        return False
    try:
        return _schema_version() == SCHEMA_REVISION
    except GenmediaError:
        return False


def readyz(request: flask.Request) -> flask.Response:
    """Readiness. Anonymous: 200 or 503, one transaction, nothing about the internals. With an admin
    key: every check, pool statistics and breaker states (contract section 4)."""
    if request.headers.get("Authorization"):
        from shared import access  # the API-key machinery loads only for callers that present a key

        access.authenticate(request, "admin")
        return json_response({"status": "ok", "checks": readiness()})
    if not is_ready():
        raise ServiceUnavailableError("not ready")
    return json_response({"status": "ok"})


def register_health_routes(router: Router) -> None:
    """Add both health routes to a function's router."""
    router.route("GET", "/healthz")(healthz)
    router.route("GET", "/readyz")(readyz)
