"""The OpenAPI 3.1 document of an HTTP function, generated from its router and its pydantic models.

Pure (no I/O), built on the first `GET /openapi.json` and cached. Schemas come from the very models
that validate bodies and shape responses (`models_json_schema`), routes and scopes from the router,
error examples from `aip193.error_body` itself. What code cannot tell (which model a route takes, its
success statuses, examples) is in `CATALOG`; a route missing from it fails the build, so no route
ships undocumented.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import flask
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema

from shared import openapi_components as components
from shared.http_api import Route, Router

__all__ = ["CATALOG", "RESPONSE_EXAMPLES", "Operation", "build_document", "document", "openapi_path", "response"]

OPENAPI_VERSION = "3.1.0"
REF = "#/components/schemas/{model}"
_PATH_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


class Health(BaseModel):
    """`GET /healthz`: the process serves requests."""

    status: Literal["ok"]


class Readiness(BaseModel):
    """`GET /readyz`: ready. With an admin key, `checks` holds every check, pool statistics and
    breaker states; anonymous callers get no `checks`."""

    status: Literal["ok"]
    checks: dict[str, Any] | None = None


class OpenApiDocument(BaseModel):
    """`GET /openapi.json`: this document."""

    model_config = ConfigDict(extra="allow")

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]


@dataclass(frozen=True)
class Operation:
    """What a route's handler reads and answers, by model name, beyond what the router knows."""

    responses: dict[int, str | None]
    body: str | None = None
    query: str | None = None
    idempotent: bool = False  # takes Idempotency-Key (409 when reused with another body)
    binary: bool = False  # a 200 that is the file itself, not JSON (downloads)
    errors: tuple[int, ...] = ()  # beyond those that auth, body, query and path variables imply
    examples: dict[str, Any] = field(default_factory=dict)


_IMAGE = {"kind": "image", "prompt": "a red fox in fresh snow", "aspect_ratio": "16:9"}
_VIDEO = {"kind": "video", "prompt": "waves at dusk", "duration_seconds": 4}
_HOOK = "https://example.com/hooks/genmedia"

CATALOG: dict[str, Operation] = {
    "GET /healthz": Operation({200: "Health"}),
    "GET /readyz": Operation({200: "Readiness"}, errors=(401, 403, 503)),  # a key, if sent, must be admin
    "GET /openapi.json": Operation({200: "OpenApiDocument"}),
    "POST /v1/generations": Operation({201: "Job", 202: "Job", 200: "Job"}, body="GenerationCreate",
                                      idempotent=True, examples={"image": _IMAGE, "video": _VIDEO,
                                                                 "with a webhook": {**_IMAGE, "webhook_url": _HOOK}}),
    "GET /v1/generations": Operation({200: "GenerationPage"}, query="GenerationListQuery"),
    "GET /v1/generations/<job_id>": Operation({200: "Job"}),
    "POST /v1/generations/<job_id>:cancel": Operation({200: "Job"}),
    "POST /v1/batches/<batch_id>:cancel": Operation({200: "Batch"}),
    "GET /v1/batches": Operation({200: "BatchPage"}, query="BatchListQuery"),
    "POST /v1/batches": Operation({202: "Batch", 200: "Batch"}, body="BatchCreate", idempotent=True,
                                  examples={"two": {"items": [_IMAGE, {**_IMAGE, "prompt": "a kite"}]}}),
    "GET /v1/batches/<batch_id>": Operation({200: "Batch"}),
    "POST /v1/uploads": Operation({201: "Upload"}, body="UploadCreate",
                                  examples={"png": {"mime_type": "image/png", "size_bytes": 734_003}}),
    "GET /v1/uploads/<upload_id>": Operation({200: "Upload"}),
    # The bytes of a local upload; no API key (the signed URL is the credential), no JSON body.
    "PUT /v1/uploads/<upload_id>": Operation({200: "Upload"}, errors=(400, 403, 409)),
    "GET /v1/files/<path:object_name>": Operation({200: None, 302: None}, query="DownloadQuery", binary=True,
                                                  errors=(403, 404, 503)),
    "POST /v1/schedules": Operation(
        {201: "Schedule", 200: "Schedule"}, body="ScheduleCreate", idempotent=True,
        examples={"weekdays at nine": {"request": _IMAGE, "cron": "0 9 * * 1-5", "timezone": "Europe/Paris"},
                  "once, a batch": {"requests": [_IMAGE, _VIDEO], "run_at": "2030-01-01T09:00:00Z"}}),
    "GET /v1/schedules": Operation({200: "SchedulePage"}, query="ScheduleListQuery"),
    "GET /v1/schedules/<schedule_id>": Operation({200: "Schedule"}),
    "DELETE /v1/schedules/<schedule_id>": Operation({204: None}),
    "POST /v1/schedules/<schedule_id>:pause": Operation({200: "Schedule"}),
    "POST /v1/schedules/<schedule_id>:resume": Operation({200: "Schedule"}),
    "POST /v1/schedules:tick": Operation({200: "TickResult"}),
    "GET /v1/webhooks/secret": Operation({200: "WebhookSecret"}),
}

_SUCCESS = {200: "OK", 201: "Created", 202: "Accepted: the work goes on; poll the resource", 204: "Deleted",
            302: "Found: the file is at `Location` (a V4-signed Cloud Storage URL valid at least a minute)"}
_REPLAYED = "Replayed: an earlier request with this Idempotency-Key and body made it"
_AT = "2026-11-26T09:41:04.123Z"
# Response examples by model; a unit test validates each against the generated schema.
RESPONSE_EXAMPLES: dict[str, Any] = {
    "Job": {"id": "gen_4bf92f3577b34da6a3ce929d0e0e4736", "kind": "image", "model": "imagen-4.0-generate-001",
            "status": "succeeded", "prompt": "a red fox in fresh snow", "error": None, "custom_id": None,
            "batch_id": None, "schedule_id": None,
            "outputs": [{"uri": "gs://genmedia-out/images/gen_4bf9/0.png", "mime_type": "image/png",
                         "url": "https://generation.example/v1/files/images/gen_4bf9/0.png?expires=1795000000"
                                "&signature=q3Jb0Fh1c2nQmA2tT3VwY1qXo9mYkW1cJ3vR5aT7uLs"}],
            "created_at": _AT, "updated_at": _AT},
    "Batch": {"id": "bat_00f067aa0ba902b7a3ce929d0e0e4736", "status": "running", "total": 2, "schedule_id": None,
              "counts": {"queued": 1, "running": 0, "succeeded": 1, "failed": 0, "cancelled": 0}, "results": None,
              "created_at": _AT, "updated_at": _AT},
}
_SCHEDULER_HEADERS = ("X-CloudScheduler-JobName", "X-CloudScheduler-ScheduleTime")


class UndocumentedRouteError(LookupError):
    """A route is registered that CATALOG does not describe: add it there."""


def openapi_path(path: str) -> str:
    """werkzeug's `/v1/generations/<job_id>` as OpenAPI's `/v1/generations/{job_id}`."""
    return _PATH_VARIABLE.sub(r"{\1}", path)


def _namespaces(models: Sequence[Any]) -> list[Any]:
    from shared import batches, jobs  # SQLAlchemy loads here, on the first request for the document
    from shared.media import request
    from shared.webhooks import api as webhooks

    return [*models, request, jobs, batches, webhooks, sys.modules[__name__], components]


def _resolve(name: str, namespaces: list[Any]) -> type[BaseModel]:
    for namespace in namespaces:
        found = getattr(namespace, name, None)
        if isinstance(found, type) and issubclass(found, BaseModel):
            return found
    raise LookupError(f"no pydantic model named {name} in {[getattr(n, '__name__', n) for n in namespaces]}")


Key = tuple[str, Literal["validation", "serialization"]]


def _schemas(operations: list[Operation], namespaces: list[Any]) -> tuple[dict[Key, Any], dict[str, Any]]:
    """Refs by (model name, mode) and every schema for components: inputs are validated, outputs serialized.

    A model used both ways with different schemas gets two entries (`Name-Input`, `Name-Output`).
    """
    wanted: dict[Key, type[BaseModel]] = {("Error", "serialization"): components.Error}
    for op in operations:
        for name in (op.body, op.query):
            if name:
                wanted[(name, "validation")] = _resolve(name, namespaces)
        for name in op.responses.values():
            if name:
                wanted[(name, "serialization")] = _resolve(name, namespaces)
    refs, defs = models_json_schema([(model, mode) for (_, mode), model in wanted.items()], ref_template=REF)
    return {key: refs[(model, key[1])] for key, model in wanted.items()}, defs.get("$defs", {})


def _deref(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    return dict(defs[ref.rsplit("/", 1)[-1]]) if ref else schema


def _parameters(route: Route, op: Operation, refs: dict[Key, Any], defs: dict[str, Any]) -> list[Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in _PATH_VARIABLE.findall(route.path)
    ]
    if op.query:
        query = _deref(refs[(op.query, "validation")], defs)
        for name, prop in query.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": name in query.get("required", []),
                           "schema": prop, "description": prop.get("description", "")})
    if op.idempotent:
        params.append({"$ref": "#/components/parameters/IdempotencyKey"})
    if route.scope == "tick":
        params += [{"name": h, "in": "header", "required": False, "schema": {"type": "string"},
                    "description": "Set by Cloud Scheduler; a repeated pair is a duplicate tick."}
                   for h in _SCHEDULER_HEADERS]
    return [*params, {"$ref": "#/components/parameters/RequestId"}]


def _error_statuses(route: Route, op: Operation) -> list[int]:
    statuses = set(op.errors) | {500}
    if route.scope is not None:
        statuses |= {401, 403, 429, 503}
    if op.body:
        statuses |= {400, 413, 415}
    if op.query:
        statuses.add(400)
    if op.idempotent:
        statuses.add(409)
    if "<" in route.path:
        statuses.add(404)
    return sorted(statuses)


def _success(status: int, schema: dict[str, Any] | None, op: Operation) -> dict[str, Any]:
    headers: dict[str, Any] = {"X-Request-Id": {"$ref": "#/components/headers/XRequestId"}}
    if op.idempotent:
        headers["Location"] = {"description": "Where the resource is", "schema": {"type": "string"}}
        headers["Idempotent-Replayed"] = {"description": "`true` when an Idempotency-Key replayed it",
                                          "schema": {"type": "string", "enum": ["true"]}}
    replayed = op.idempotent and status == 200
    answer: dict[str, Any] = {"description": _REPLAYED if replayed else _SUCCESS[status], "headers": headers}
    if status == 302:
        headers["Location"] = {"description": "Where the file is", "schema": {"type": "string"}}
    if op.binary and status == 200:
        answer["content"] = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
    if schema is not None:
        answer["content"] = {"application/json": {"schema": schema}}
        example = RESPONSE_EXAMPLES.get(schema.get("$ref", "").rsplit("/", 1)[-1])
        if example is not None:
            answer["content"]["application/json"]["example"] = example
    return answer


def _operation(route: Route, op: Operation, refs: dict[Key, Any], defs: dict[str, Any]) -> dict[str, Any]:
    doc = (route.handler.__doc__ or "").strip()
    out: dict[str, Any] = {
        "operationId": route.handler.__name__,
        "summary": doc.splitlines()[0] if doc else route.path,
        "tags": [route.path.split("/")[2].split(":")[0] if route.path.startswith("/v1/") else "operations"],
        "parameters": _parameters(route, op, refs, defs),
        "responses": {str(s): _success(s, refs[(m, "serialization")] if m else None, op)
                      for s, m in sorted(op.responses.items())},
    }
    for status in _error_statuses(route, op):
        out["responses"][str(status)] = {"$ref": f"#/components/responses/Error{status}"}
    if route.scope is None:
        out["security"] = []
    elif route.scope == "tick":
        out["security"] = [{"bearerAuth": ["admin"]}, {"cloudSchedulerOidc": []}]
        out["description"] = "Cloud Scheduler's OIDC token, or an API key with the `admin` scope."
    elif route.scope == "any":
        out["security"] = [{"bearerAuth": []}]
        out["description"] = "Requires an API key (any scope)."
    else:
        out["security"] = [{"bearerAuth": [route.scope]}]
        out["description"] = f"Requires an API key with the `{route.scope}` scope (or `admin`)."
    if op.body:
        content: dict[str, Any] = {"schema": refs[(op.body, "validation")]}
        if op.examples:
            content["examples"] = {name: {"value": value} for name, value in op.examples.items()}
        out["requestBody"] = {"required": True, "content": {"application/json": content}}
    return out


def build_document(routes: Sequence[Route], *, title: str, models: Sequence[Any] = ()) -> dict[str, Any]:
    """The OpenAPI 3.1 document for `routes`; `models` are namespaces (modules) holding the named models."""
    undocumented = [f"{r.method} {r.path}" for r in routes if f"{r.method} {r.path}" not in CATALOG]
    if undocumented:
        raise UndocumentedRouteError(f"routes missing from shared.openapi.CATALOG: {', '.join(undocumented)}")
    described = [(r, CATALOG[f"{r.method} {r.path}"]) for r in routes]
    refs, defs = _schemas([op for _, op in described], _namespaces(models))
    paths: dict[str, dict[str, Any]] = {}
    for route, op in described:
        operation = _operation(route, op, refs, defs)
        paths.setdefault(openapi_path(route.path), {})[route.method.lower()] = operation
    statuses = sorted({int(s) for item in paths.values() for o in item.values() for s in o["responses"]
                       if int(s) >= 400})
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": "1", "description": components.API_DESCRIPTION},
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": components.SECURITY_SCHEMES,
            "parameters": components.PARAMETERS,
            "headers": components.HEADERS,
            "responses": {f"Error{s}": components.error_response(s) for s in statuses},
        },
    }


# Keyed by the router itself, weakly: an id() could be reused by a later router once this one is gone.
_cache: weakref.WeakKeyDictionary[Router, bytes] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _encoded(router: Router, title: str, models: Sequence[Any]) -> bytes:
    with _lock:
        encoded = _cache.get(router)
        if encoded is None:
            built = build_document(router.routes(), title=title, models=models)
            encoded = _cache[router] = json.dumps(built, separators=(",", ":"), ensure_ascii=False).encode()
        return encoded


def document(router: Router, *, title: str, models: Sequence[Any] = ()) -> dict[str, Any]:
    """The router's document, built once per router; a fresh copy each call."""
    loaded: dict[str, Any] = json.loads(_encoded(router, title, models))
    return loaded


def response(router: Router, *, title: str, models: Sequence[Any] = ()) -> flask.Response:
    """`GET /openapi.json`: the cached document, built on the first request."""
    return flask.Response(_encoded(router, title, models), mimetype="application/json")
