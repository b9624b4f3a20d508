"""Entry point of the batch function: one Pub/Sub message per batch item."""

from __future__ import annotations

import logging
from typing import Any

import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from functions.batch import service
from shared import context
from shared.config import load_settings_or_exit
from shared.events import pubsub_handler
from shared.exceptions import GenmediaError
from shared.http_api import install_error_handlers
from shared.logging import configure_logging
from shared.webhooks import dispatch

configure_logging(load_settings_or_exit(serves_api=False, signs_webhooks=True))
dispatch.enable()  # the item that finishes a batch sends its batch.completed right away
_log = logging.getLogger("genmedia.batch")


def _ack_undeliverable(exc: BaseException) -> flask.Response | None:
    """A body functions-framework cannot turn into an event (its 400 or 415, or a crash while parsing
    it, since our own failures arrive as GenmediaError): log it, never its data, and ack."""
    if isinstance(exc, GenmediaError) or (isinstance(exc, HTTPException) and exc.code not in (400, 415)):
        return None
    _log.error("undeliverable request acknowledged",
               extra={"error": type(exc).__name__, "reason": "MALFORMED_MESSAGE"})
    context.clear()
    return flask.Response("", status=204)


install_error_handlers(functions_framework.errorhandler, on_error=_ack_undeliverable)


_handle = pubsub_handler(service.process_item)


@functions_framework.cloud_event
def batch(event: Any) -> None:
    """Handle one Pub/Sub delivery."""
    _handle(event)
