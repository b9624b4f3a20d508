"""HTTP plumbing for the HTTP functions: routing, JSON bodies, request ids, and the error decorator.

`Router` only registers; `http_app` wraps the router in the one decorator that catches everything,
answers in the AIP-193 format, echoes `X-Request-Id`, binds trace context and logs one `httpRequest`
line per request.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flask
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, Rule

from shared import context
from shared.aip193 import error_body, retry_after_seconds
from shared.config import get_settings
from shared.exceptions import (
    GenmediaError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from shared.masking import mask_text
from shared.request_masking import mask_and_cut, mask_query
from shared.telemetry import tracing
from shared.trace import trace_from_headers

__all__ = ["Route", "Router", "http_app", "install_error_handlers", "json_response", "read_json"]

Handler = Callable[..., flask.Response]
_log = logging.getLogger("genmedia.http")
_ROUTE = "genmedia.route"  # the matched rule, in the WSGI environ, for the request's span name
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
_MAX_DEPTH = 32

_HTTP_ERRORS: dict[int, type[GenmediaError]] = {
    400: ValidationError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
}


@dataclass(frozen=True)
class Route:
    """One registered route as documentation sees it: `scope` None means no authentication."""

    method: str
    path: str
    scope: str | None
    handler: Handler


class Router:
    """Method + path -> handler, on werkzeug's routing; decorators only register."""

    def __init__(self) -> None:
        self._map = Map(strict_slashes=False, merge_slashes=False)
        self._handlers: dict[str, tuple[Handler, str | None]] = {}
        # Routes without variables skip werkzeug's matcher: health checks are the hottest path.
        self._static: dict[tuple[str, str], str] = {}

    def route(self, method: str, path: str, *, scope: str | None = None) -> Callable[[Handler], Handler]:
        """Register a handler: `handler(request, **path_args)`, or with a scope
        `handler(request, principal, **path_args)` after authentication (`scope="tick"`: Cloud Scheduler)."""

        def register(handler: Handler) -> Handler:
            endpoint = f"{method} {path}"
            self._map.add(Rule(path, methods=[method], endpoint=endpoint))
            self._handlers[endpoint] = (handler, scope)
            if "<" not in path:
                self._static[(method, path)] = endpoint
            return handler

        return register

    def rules(self) -> list[tuple[str, str]]:
        """Every (method, path) registered, for docs and tests."""
        return [(e.split(" ", 1)[0], e.split(" ", 1)[1]) for e in self._handlers]

    def routes(self) -> list[Route]:
        """Every route registered, with its scope and handler, in registration order (OpenAPI)."""
        routes = []
        for endpoint, (handler, scope) in self._handlers.items():
            method, path = endpoint.split(" ", 1)
            routes.append(Route(method, path, scope, handler))
        return routes

    def dispatch(self, request: flask.Request) -> flask.Response:
        """Call the handler for this request, or raise NotFound/MethodNotAllowed in our tree."""
        static = self._static.get((request.method, request.path))
        if static is not None:
            return self._call(static, request, {})
        adapter = self._map.bind("localhost", path_info=request.path)
        try:
            endpoint, args = adapter.match(method=request.method)
        except MethodNotAllowed as err:
            raised = MethodNotAllowedError(f"method {request.method} is not allowed here")
            raised.metadata["allow"] = ", ".join(sorted(err.valid_methods or []))
            raise raised from None
        except HTTPException:
            raise NotFoundError(f"no route for {request.method} {mask_and_cut(request.path, 200)}") from None
        return self._call(str(endpoint), request, dict(args))

    def _call(self, endpoint: str, request: flask.Request, args: dict[str, Any]) -> flask.Response:
        handler, scope = self._handlers[endpoint]
        request.environ[_ROUTE] = endpoint
        if scope is None:
            return handler(request, **args)
        from shared import access  # the API-key machinery only loads for routes that need it

        principal = access.authenticate_tick(request) if scope == "tick" else access.authenticate(request, scope)
        if any("\x00" in value for value in args.values() if isinstance(value, str)):
            # PostgreSQL text cannot hold U+0000, so no resource has such an id (and the query would fail).
            raise NotFoundError("not found")
        return handler(request, principal, **args)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> flask.Response:
    """A JSON response; `body` must already be JSON-safe."""
    return flask.Response(
        json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        status=status,
        mimetype="application/json",
        headers=headers,
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _depth(value: Any) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > _MAX_DEPTH:
            return deepest
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _nul_field(value: Any) -> str | None:
    """The path of the first string, key or value, holding U+0000 (`items[2].prompt`), else None."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str) and "\x00" in node:
            return path or "body"
        if isinstance(node, dict):
            for key, child in node.items():
                if "\x00" in key:
                    return path or "body"
                stack.append((child, f"{path}.{key}" if path else key))
        elif isinstance(node, list):
            stack.extend((child, f"{path}[{index}]") for index, child in enumerate(node))
    return None


def read_json(request: flask.Request) -> dict[str, Any]:
    """The body as a JSON object, or a 4xx that says exactly what is wrong with it."""
    limit = get_settings().max_request_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLargeError(f"the request body is over {limit} bytes")
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaTypeError("Content-Type must be application/json")
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise PayloadTooLargeError(f"the request body is over {limit} bytes")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except RecursionError:
        raise ValidationError.for_field("body", "is nested too deeply", reason="INVALID_JSON") from None
    except (UnicodeDecodeError, ValueError):
        raise ValidationError.for_field("body", "is not valid JSON", reason="INVALID_JSON") from None
    if not isinstance(data, dict):
        raise ValidationError.for_field("body", "must be a JSON object", reason="INVALID_JSON")
    if _depth(data) > _MAX_DEPTH:
        raise ValidationError.for_field("body", "is nested too deeply", reason="INVALID_JSON")
    # U+0000 only enters through the `\u0000` escape; PostgreSQL text and jsonb cannot store it.
    nul = _nul_field(data) if b"\\u0000" in raw else None
    if nul is not None:
        raise ValidationError.for_field(nul, "must not contain NUL (U+0000) characters")
    return data


def _client_token(value: str | None) -> str | None:
    """A client-supplied id (X-Request-Id, Function-Execution-Id) when it is a sane token and not
    shaped like a secret: it is echoed in headers, error bodies and every log line."""
    if value and _SANE_REQUEST_ID.match(value) and mask_text(value) == value:
        return value
    return None


def _request_id(request: flask.Request) -> str:
    return _client_token(request.headers.get("X-Request-Id")) or uuid.uuid4().hex


def error_response(err: GenmediaError, request_id: str | None) -> flask.Response:
    """The AIP-193 response for `err`, with Retry-After / Allow headers where they belong."""
    headers: dict[str, str] = {}
    retry_after = retry_after_seconds(err)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if isinstance(err, MethodNotAllowedError) and err.metadata.get("allow"):
        headers["Allow"] = err.metadata["allow"]
    if err.http_status in (401, 403):
        from shared.apikeys import www_authenticate

        challenge = www_authenticate(err)
        if challenge:
            headers["WWW-Authenticate"] = challenge
    return json_response(error_body(err, request_id), err.http_status, headers)


def from_http_exception(err: HTTPException) -> GenmediaError:
    """werkzeug's own 4xx/5xx (raised before or around our code) as our errors."""
    cls = _HTTP_ERRORS.get(err.code or 500)
    if cls is None:
        return GenmediaError()
    return cls()


def _log_outcome(err: GenmediaError, exc: BaseException) -> None:
    if err.http_status >= 500 and type(err) is GenmediaError:
        _log.error("unhandled exception", exc_info=exc)
    elif err.http_status >= 500:
        _log.error("request failed: %s", err, extra={"reason": err.reason})
    else:
        _log.info("request rejected: %s", err, extra={"reason": err.reason})


def handle_exception(exc: BaseException, request_id: str | None) -> flask.Response:
    """Any exception -> a contract-shaped response; unexpected ones log their traceback."""
    if isinstance(exc, GenmediaError):
        err = exc
    elif isinstance(exc, HTTPException):
        err = from_http_exception(exc)
    else:
        err = GenmediaError()
    _log_outcome(err, exc)
    return error_response(err, request_id)


def _request_url(request: flask.Request) -> str:
    # Path and raw query (werkzeug's `request.url` re-encodes the whole URL, costly per request),
    # each masked as the application reads it (the query decoded), and only then cut.
    environ = request.environ
    query = mask_query(str(environ.get("QUERY_STRING", "")))
    url = mask_and_cut(str(environ.get("PATH_INFO", "")), 2000) + ("?" + query if query else "")
    return url[:2000]


def _remote_ip(request: flask.Request) -> str:
    """The address the platform saw: the last X-Forwarded-For entry (the one Cloud Run's front end
    appends; earlier ones are whatever the client wrote), else the socket's peer, and only an IP."""
    forwarded = request.headers.get("X-Forwarded-For", "")
    for candidate in (forwarded.rsplit(",", 1)[-1].strip(), request.remote_addr or ""):
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return ""


def _log_request(request: flask.Request, status: int, started: float) -> None:
    latency = time.perf_counter() - started
    _log.info(
        "%s %s %s",
        request.method,
        mask_and_cut(request.path, 200),
        status,
        extra={
            "httpRequest": {
                "requestMethod": request.method,
                "requestUrl": _request_url(request),
                "status": status,
                "latency": f"{latency:.6f}s",
                "userAgent": mask_and_cut(request.headers.get("User-Agent", ""), 500),
                "remoteIp": _remote_ip(request),
            }
        },
    )


def http_app(router: Router) -> Callable[[flask.Request], flask.Response]:
    """The entry point body: context, dispatch, errors in the contract's format, one access log."""

    def handle(request: flask.Request) -> flask.Response:
        started = time.perf_counter()
        context.clear()
        request_id = _request_id(request)
        trace = trace_from_headers(request.headers)
        context.bind(
            request_id=request_id,
            # Client-supplied like X-Request-Id: it groups lines, it proves nothing (see README, Logs).
            execution_id=_client_token(request.headers.get("Function-Execution-Id")) or uuid.uuid4().hex[:12],
            trace_id=trace.trace_id if trace else None,
            span_id=trace.span_id if trace else None,
            trace_sampled=trace.sampled if trace else None,
        )
        with tracing.entry_span(request.method, trace, attributes={"http.request.method": request.method}) as span:
            try:
                response = router.dispatch(request)
            except Exception as exc:  # noqa: BLE001 - the one place every error becomes a response
                response = handle_exception(exc, request_id)
            response.headers["X-Request-Id"] = request_id
            route = request.environ.get(_ROUTE) or f"{request.method} (no route)"
            tracing.finish_request(span, route, response.status_code)
            _log_request(request, response.status_code, started)
        context.clear()
        return response

    return handle


ErrorRegistrar = Callable[[type[BaseException]], Callable[[Callable[..., flask.Response]], Any]]


def install_error_handlers(
    register: ErrorRegistrar,
    on_error: Callable[[BaseException], flask.Response | None] | None = None,
) -> None:
    """Render the framework's own errors (its 404s, 400s, crashes) in our format too.

    `register` is functions-framework's `errorhandler`, passed in by each entry point, so the shared
    layer never imports the runtime it is served by.
    """

    def render(exc: BaseException) -> flask.Response:
        if on_error is not None:
            handled = on_error(exc)
            if handled is not None:
                return handled
        request_id = context.current().get("request_id") or _request_id(flask.request)
        response = handle_exception(exc, request_id)
        response.headers["X-Request-Id"] = request_id
        return response

    register(HTTPException)(render)
    register(Exception)(render)
