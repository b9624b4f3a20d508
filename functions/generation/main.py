"""Entry point of the generation function: the public HTTP API for generations and batches.

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
    from shared.apikeys import Principal

# Imported on first use, not at cold start: /healthz must not pay for SQLAlchemy and the SDKs.
service = lazy_import("functions.generation.service")
models = lazy_import("functions.generation.models")
access = lazy_import("shared.access")
idempotency = lazy_import("shared.idempotency")
openapi = lazy_import("shared.openapi")
uploads = lazy_import("functions.generation.uploads")
downloads = lazy_import("shared.results.downloads")
lists = lazy_import("shared.results.lists")

configure_logging(load_settings_or_exit())
install_error_handlers(functions_framework.errorhandler)
dispatch.enable()

router = Router()
register_health_routes(router)
register_webhook_routes(router)


@router.route("POST", "/v1/generations", scope="generate")
def create_generation(request: flask.Request, principal: Principal) -> flask.Response:
    """Start a generation: 201 with an image's final job, 202 with a running video."""
    body = read_json(request)
    create = parse_model(models.GenerationCreate, body)
    key = idempotency.parse_key(request.headers.get("Idempotency-Key"))
    access.limit(principal, "generate")
    job, created = service.create_generation(create.generation_request(), owner_id=principal.key_id,
                                             idempotency_key=key, digest=idempotency.body_hash(body),
                                             webhook_url=create.webhook_url)
    status = 202 if job.status in ("queued", "running") else 201
    headers = {"Location": f"/v1/generations/{job.id}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
        status = 200
    return json_response(job.model_dump(mode="json"), status, headers)


@router.route("GET", "/v1/generations", scope="generate")
def list_generations(request: flask.Request, principal: Principal) -> flask.Response:
    """Your jobs, newest first, a page at a time; filter by `batch_id`, `schedule_id` or `status`."""
    query = parse_model(lists.GenerationListQuery, request.args.to_dict())
    access.limit(principal, "read")
    return json_response(service.list_generations(query, owner_id=principal.key_id).model_dump(mode="json"))


@router.route("GET", "/v1/generations/<job_id>", scope="generate")
def get_generation(request: flask.Request, principal: Principal, job_id: str) -> flask.Response:
    """One job; reading a running video advances it."""
    access.limit(principal, "read")
    job = service.read_generation(job_id, owner_id=principal.key_id)
    return json_response(job.model_dump(mode="json"))


@router.route("POST", "/v1/generations/<job_id>:cancel", scope="generate")
def cancel_generation(request: flask.Request, principal: Principal, job_id: str) -> flask.Response:
    """Cancel a job not started yet, or a running video; an image inside its Vertex AI call finishes."""
    access.limit(principal, "generate")
    return json_response(service.cancel_generation(job_id, owner_id=principal.key_id).model_dump(mode="json"))


@router.route("POST", "/v1/batches", scope="batch")
def create_batch(request: flask.Request, principal: Principal) -> flask.Response:
    """Record a batch of up to 1,000 generations and fan it out through Pub/Sub: 202."""
    body = read_json(request)
    batch_request = parse_model(models.BatchCreate, body)
    key = idempotency.parse_key(request.headers.get("Idempotency-Key"))
    access.limit(principal, "batch", cost=len(batch_request.items))
    batch, created = service.create_batch(batch_request.items, owner_id=principal.key_id,
                                          idempotency_key=key, digest=idempotency.body_hash(body),
                                          webhook_url=batch_request.webhook_url)
    headers = {"Location": f"/v1/batches/{batch.id}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return json_response(batch.model_dump(mode="json"), 202 if created else 200, headers)


@router.route("GET", "/v1/batches", scope="batch")
def list_batches(request: flask.Request, principal: Principal) -> flask.Response:
    """Your batches, newest first, a page at a time, each with its counts and results file."""
    query = parse_model(lists.BatchListQuery, request.args.to_dict())
    access.limit(principal, "read")
    return json_response(service.list_batches_page(query, owner_id=principal.key_id).model_dump(mode="json"))


@router.route("GET", "/v1/batches/<batch_id>", scope="batch")
def get_batch(request: flask.Request, principal: Principal, batch_id: str) -> flask.Response:
    """A batch, with its status and per-status item counts."""
    access.limit(principal, "read")
    return json_response(service.read_batch(batch_id, owner_id=principal.key_id).model_dump(mode="json"))


@router.route("POST", "/v1/uploads", scope="generate")
def create_upload(request: flask.Request, principal: Principal) -> flask.Response:
    """Declare a picture to upload: 201 with the URL to PUT its bytes to, and the headers to send."""
    body = parse_model(models.UploadCreate, read_json(request))
    access.limit(principal, "generate")
    upload = uploads.create_upload(body, owner_id=principal.key_id, base_url=request.host_url)
    headers = {"Location": f"/v1/uploads/{upload.upload_id}"}
    return json_response(upload.model_dump(mode="json", exclude_none=True), 201, headers)


@router.route("GET", "/v1/uploads/<upload_id>", scope="generate")
def get_upload(request: flask.Request, principal: Principal, upload_id: str) -> flask.Response:
    """An upload: pending, ready (with the picture's type and size) or rejected (with why)."""
    access.limit(principal, "read")
    upload = uploads.read_upload(upload_id, owner_id=principal.key_id)
    return json_response(upload.model_dump(mode="json", exclude_none=True))


@router.route("PUT", "/v1/uploads/<upload_id>")
def put_upload(request: flask.Request, upload_id: str) -> flask.Response:
    """The bytes of a local upload; the signed URL is the only credential (cloud: Cloud Storage's)."""
    upload = uploads.receive_upload(
        upload_id, expires=request.args.get("expires"), signature=request.args.get("signature"),
        content_type=request.headers.get("Content-Type"), content_length=request.content_length,
        stream=request.stream)
    return json_response(upload.model_dump(mode="json", exclude_none=True))


@router.route("GET", "/v1/files/<path:object_name>")
def download_file(request: flask.Request, object_name: str) -> flask.Response:
    """Download an output or a results file through its signed link: no key needed, 403 once changed or expired."""
    query = parse_model(models.DownloadQuery, request.args.to_dict())
    found = downloads.resolve_download(object_name, query.expires, query.signature)
    if found.redirect is not None:
        response = flask.redirect(found.redirect, 302)
        response.headers["Cache-Control"] = "no-store"
        return response
    response = flask.send_file(found.path, mimetype=found.mime_type, conditional=True, max_age=found.seconds_left)
    response.headers["Cache-Control"] = f"private, max-age={found.seconds_left}"
    return response


@router.route("POST", "/v1/batches/<batch_id>:cancel", scope="batch")
def cancel_batch(request: flask.Request, principal: Principal, batch_id: str) -> flask.Response:
    """Cancel every item of a batch not started yet, and its running videos; the batch after."""
    access.limit(principal, "batch")
    return json_response(service.cancel_batch(batch_id, owner_id=principal.key_id).model_dump(mode="json"))


@router.route("GET", "/openapi.json")
def openapi_document(request: flask.Request) -> flask.Response:
    """This function's OpenAPI 3.1 document, generated from its routes and models on first request."""
    return openapi.response(router, title="genmedia generation API", models=[models, lists])


_handle = http_app(router)


@functions_framework.http
def generation(request: flask.Request) -> flask.Response:
    """Serve one HTTP request."""
    return _handle(request)
