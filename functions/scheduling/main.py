"""Entry point of the scheduling function: schedules, and the tick Cloud Scheduler calls every minute.

Thin on purpose: parse the request, call the service, render the result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import flask
import functions_framework

from shared.config import load_settings_or_exit
from shared.health import register_health_routes
from shared.http_api import Router, http_app, install_error_handlers, json_response, read_json
from shared.lazy import lazy_import
from shared.logging import configure_logging
from shared.validation import parse_model
from shared.webhooks import dispatch
from shared.webhooks.api import register_webhook_routes

if TYPE_CHECKING:
    from functions.scheduling.models import Schedule
    from shared.apikeys import Principal

# Imported on first use, not at cold start: /healthz must not pay for SQLAlchemy and the SDKs.
service = lazy_import("functions.scheduling.service")
ticker = lazy_import("functions.scheduling.tick")
models = lazy_import("functions.scheduling.models")
access = lazy_import("shared.access")
idempotency = lazy_import("shared.idempotency")
openapi = lazy_import("shared.openapi")

configure_logging(load_settings_or_exit())
install_error_handlers(functions_framework.errorhandler)
dispatch.enable()

router = Router()
register_health_routes(router)
register_webhook_routes(router)


def _schedule_response(schedule: Schedule, status: int = 200) -> flask.Response:
    return json_response(schedule.model_dump(mode="json", exclude_none=False), status)


@router.route("POST", "/v1/schedules", scope="schedule")
def create_schedule(request: flask.Request, principal: Principal) -> flask.Response:
    """Create a cron or one-off schedule: 201 (200 when an Idempotency-Key replays it)."""
    body = read_json(request)
    schedule_request = parse_model(models.ScheduleCreate, body)
    # What the schedule runs is paid for like a request of its own: the same scope, and each run
    # draws its items from the owner's budget when it fires.
    access.require_scope(principal, "batch" if schedule_request.requests is not None else "generate")
    access.limit(principal, "schedule")
    schedule, created = service.create_schedule(
        schedule_request, owner_id=principal.key_id, digest=idempotency.body_hash(body),
        idempotency_key=idempotency.parse_key(request.headers.get("Idempotency-Key")),
    )
    response = _schedule_response(schedule, 201 if created else 200)
    response.headers["Location"] = f"/v1/schedules/{schedule.id}"
    return response


@router.route("GET", "/v1/schedules", scope="schedule")
def list_schedules(request: flask.Request, principal: Principal) -> flask.Response:
    """The caller's schedules, newest first, a page at a time (`page_size`, `page_token`)."""
    query = parse_model(service.ScheduleListQuery, request.args.to_dict())
    access.limit(principal, "read")
    return json_response(service.list_schedules(query, owner_id=principal.key_id).model_dump(mode="json"))


@router.route("GET", "/v1/schedules/<schedule_id>", scope="schedule")
def get_schedule(request: flask.Request, principal: Principal, schedule_id: str) -> flask.Response:
    """A schedule with next_run_at, last_run_at and its most recent runs."""
    access.limit(principal, "read")
    return _schedule_response(service.read_schedule(schedule_id, owner_id=principal.key_id))


@router.route("DELETE", "/v1/schedules/<schedule_id>", scope="schedule")
def delete_schedule(request: flask.Request, principal: Principal, schedule_id: str) -> flask.Response:
    """Delete a schedule: 204."""
    access.limit(principal, "schedule")
    service.delete_schedule(schedule_id, owner_id=principal.key_id)
    return flask.Response(status=204)


@router.route("POST", "/v1/schedules/<schedule_id>:pause", scope="schedule")
def pause_schedule(request: flask.Request, principal: Principal, schedule_id: str) -> flask.Response:
    """Stop firing until resumed."""
    access.limit(principal, "schedule")
    return _schedule_response(service.set_paused(schedule_id, owner_id=principal.key_id, paused=True))


@router.route("POST", "/v1/schedules/<schedule_id>:resume", scope="schedule")
def resume_schedule(request: flask.Request, principal: Principal, schedule_id: str) -> flask.Response:
    """Fire again from the next time after now."""
    access.limit(principal, "schedule")
    return _schedule_response(service.set_paused(schedule_id, owner_id=principal.key_id, paused=False))


@router.route("POST", "/v1/schedules:tick", scope="tick")
def tick(request: flask.Request, principal: Principal) -> flask.Response:
    """Cloud Scheduler's minute tick: fire due schedules exactly once, publish, advance videos."""
    result = ticker.tick(
        job_name=request.headers.get("X-CloudScheduler-JobName"),
        schedule_time=request.headers.get("X-CloudScheduler-ScheduleTime"),
    )
    return json_response(result.model_dump())


@router.route("GET", "/openapi.json")
def openapi_document(request: flask.Request) -> flask.Response:
    """This function's OpenAPI 3.1 document, generated from its routes and models on first request."""
    return openapi.response(router, title="genmedia scheduling API", models=[models, service])


_handle = http_app(router)


@functions_framework.http
def scheduling(request: flask.Request) -> flask.Response:
    """Serve one HTTP request."""
    return _handle(request)
