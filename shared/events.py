"""Pub/Sub deliveries to the event function, in every shape they arrive, and the ack/retry decorator.

Pub/Sub redelivers whatever is not acknowledged, so the decorator's one decision is: return (ack) or
raise (nack). It raises only for errors whose `retryable` says a later attempt can succeed; permanent
failures and unparseable messages are logged and acknowledged, so nothing loops forever.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared import context
from shared.exceptions import GenmediaError
from shared.telemetry import tracing
from shared.trace import TraceContext, trace_from_attributes

__all__ = ["MalformedMessageError", "PubSubMessage", "RedeliverError", "message_from_event", "pubsub_handler"]

_log = logging.getLogger("genmedia.events")


class RedeliverError(GenmediaError):
    """Our handler failed unexpectedly; the message is nacked so Pub/Sub redelivers it (bounded by
    the dead-letter policy and our attempt counter)."""

    http_status = 503
    grpc_status = "UNAVAILABLE"
    reason = "REDELIVER"
    retryable = True
    default_message = "the message will be redelivered"
    default_retry_after = 10.0


class MalformedMessageError(GenmediaError):
    """A delivery that is not a Pub/Sub message we can read; acknowledged so it never loops."""

    http_status = 400
    grpc_status = "INVALID_ARGUMENT"
    reason = "MALFORMED_MESSAGE"
    default_message = "the message cannot be parsed"


@dataclass(frozen=True)
class PubSubMessage:
    """One Pub/Sub message, whatever envelope carried it."""

    message_id: str
    data: bytes
    attributes: Mapping[str, str] = field(default_factory=dict)
    publish_time: str | None = None
    delivery_attempt: int | None = None
    subscription: str | None = None

    def json(self) -> Any:
        """The data decoded as JSON, or MalformedMessageError."""
        try:
            return json.loads(self.data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise MalformedMessageError(detail="data is not UTF-8 JSON") from None
        except RecursionError:  # nested past the parser's limit: no redelivery can parse it either
            raise MalformedMessageError(detail="data is nested too deeply") from None


def _decode_data(value: Any) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):
        raise MalformedMessageError(detail="message.data is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedMessageError(detail="message.data is not valid base64") from None


def message_from_envelope(envelope: Any, fallback_id: str | None = None) -> PubSubMessage:
    """`{"message": {...}, "subscription": ...}` (push body and CloudEvent data) -> PubSubMessage."""
    if isinstance(envelope, (bytes, bytearray)):
        try:
            envelope = json.loads(envelope)
        except (ValueError, RecursionError):
            raise MalformedMessageError(detail="event data is not JSON") from None
    message = envelope.get("message") if isinstance(envelope, dict) else None
    if not isinstance(message, dict):
        raise MalformedMessageError(detail="no message object in the delivery")
    message_id = message.get("messageId") or message.get("message_id") or fallback_id
    if not isinstance(message_id, str) or not message_id:
        raise MalformedMessageError(detail="message has no messageId")
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise MalformedMessageError(detail="message.attributes is not an object")
    attempt = envelope.get("deliveryAttempt", message.get("deliveryAttempt"))
    return PubSubMessage(
        message_id=message_id,
        data=_decode_data(message.get("data")),
        attributes={str(k): str(v) for k, v in attributes.items()},
        publish_time=message.get("publishTime") or message.get("publish_time"),
        delivery_attempt=_attempt(attempt),
        subscription=envelope.get("subscription") if isinstance(envelope.get("subscription"), str) else None,
    )


def _attempt(value: Any) -> int | None:
    """Pub/Sub's `deliveryAttempt` when it is a plain number; anything else counts as unknown."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdecimal() and len(value) < 10:
        return int(value)
    return None


def message_from_event(event: Any) -> PubSubMessage:
    """A CloudEvent (binary or structured, or converted from a raw push body) -> PubSubMessage."""
    try:
        event_id = event["id"]
    except (KeyError, TypeError):
        event_id = None
    return message_from_envelope(getattr(event, "data", None), fallback_id=event_id)


def _bind(message: PubSubMessage) -> TraceContext | None:
    trace = trace_from_attributes(message.attributes)
    context.bind(
        request_id=message.message_id,
        trace_id=trace.trace_id if trace else None,
        span_id=trace.span_id if trace else None,
        trace_sampled=trace.sampled if trace else None,
    )
    return trace


def pubsub_handler(func: Callable[[PubSubMessage], None]) -> Callable[[Any], None]:
    """Wrap an event function: return to ack, raise to nack, only for retryable errors."""

    def handle(event: Any) -> None:
        context.clear()
        try:
            message = message_from_event(event)
        except MalformedMessageError as err:
            context.bind(request_id=_event_id(event))
            _log.error("unparseable message acknowledged: %s", err.detail, extra={"reason": err.reason})
            context.clear()
            return
        trace = _bind(message)
        try:
            with tracing.entry_span("pubsub message", trace, consumer=True,
                                    attributes={"messaging.message.id": message.message_id or ""}):
                func(message)
        except GenmediaError as err:
            if err.retryable:
                _log.warning("transient failure, message will be redelivered: %s", err, extra={"reason": err.reason})
                raise
            _log.error("permanent failure, message acknowledged: %s", err, extra={"reason": err.reason})
        except Exception as err:
            _log.exception("unexpected failure, message will be redelivered")
            raise RedeliverError() from err
        finally:
            context.clear()

    return handle


def _event_id(event: Any) -> str | None:
    try:
        value = event["id"]
    except (KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None
