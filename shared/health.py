"""`/healthz` (liveness, no I/O) and `/readyz` (the database answers, with pool statistics)."""

from __future__ import annotations

import flask

from shared.database import check_health
from shared.http_api import Router, json_response


def healthz(request: flask.Request) -> flask.Response:
    """Liveness: the process serves requests. Touches nothing else."""
    return json_response({"status": "ok"})


def readyz(request: flask.Request) -> flask.Response:
    """Readiness: 200 with pool statistics when the database answers quickly, else 503."""
    return json_response({"status": "ok", "checks": check_health()})


def register_health_routes(router: Router) -> None:
    """Add both health routes to a function's router."""
    router.route("GET", "/healthz")(healthz)
    router.route("GET", "/readyz")(readyz)
