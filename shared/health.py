"""`/healthz` (liveness, no I/O) and `/readyz` (a deep check: database, schema, breakers, config)."""

from __future__ import annotations

import flask

from shared.config import get_settings
from shared.exceptions import GenmediaError, ServiceUnavailableError
from shared.http_api import Router, json_response

# The Alembic head this code was written for; a test keeps it equal to migrations/versions.
SCHEMA_REVISION = "0012_schedule_budgets"


def healthz(request: flask.Request) -> flask.Response:
    """Liveness: the process serves requests. Touches nothing else."""
    return json_response({"status": "ok"})


def _schema() -> str:
    from sqlalchemy import text

    from shared.database import session_scope

    with session_scope() as session:
        version = session.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()
    return "ok" if version == SCHEMA_REVISION else f"at {version}, code expects {SCHEMA_REVISION}"


def readiness() -> dict[str, object]:
    """Every check, raising ServiceUnavailableError (503) with the failing ones when not ready."""
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


def readyz(request: flask.Request) -> flask.Response:
    """Readiness: 200 with the checks and pool statistics, or 503 naming what failed."""
    return json_response({"status": "ok", "checks": readiness()})


def register_health_routes(router: Router) -> None:
    """Add both health routes to a function's router."""
    router.route("GET", "/healthz")(healthz)
    router.route("GET", "/readyz")(readyz)
