"""A probe function built only from the shared layer, to test the decorator route by route.

It stands for any function of ours: it reads JSON the way real routes do, and raises on purpose.
"""

from __future__ import annotations

import flask
import functions_framework
from pydantic import BaseModel, ConfigDict, Field

from shared import exceptions as ex
from shared.config import load_settings_or_exit
from shared.health import register_health_routes
from shared.http_api import Router, http_app, install_error_handlers, json_response, read_json
from shared.logging import configure_logging, get_logger
from shared.validation import parse_model

configure_logging(load_settings_or_exit())
install_error_handlers(functions_framework.errorhandler)
router = Router()
register_health_routes(router)
_log = get_logger("probe")


class Item(BaseModel):
    """A body with the shapes real requests have."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1)
    count: int = Field(default=1, ge=1, le=4)
    tags: list[str] = []


@router.route("POST", "/v1/items")
def create_item(request: flask.Request) -> flask.Response:
    item = parse_model(Item, read_json(request))
    _log.info("item accepted", extra={"item": item.model_dump()})
    return json_response(item.model_dump(), 201)


@router.route("GET", "/v1/items/<item_id>")
def get_item(request: flask.Request, item_id: str) -> flask.Response:
    raise ex.NotFoundError(f"item {item_id[:40]} not found")


@router.route("GET", "/boom")
def boom(request: flask.Request) -> flask.Response:
    raise RuntimeError("secret internals: password=hunter2 at /srv/app/db.py")


@router.route("GET", "/raise/<name>")
def raise_named(request: flask.Request, name: str) -> flask.Response:
    raise getattr(ex, name)(detail="internal detail SELECT * FROM jobs")


_handle = http_app(router)


@functions_framework.http
def probe(request: flask.Request) -> flask.Response:
    """Serve one request."""
    return _handle(request)
