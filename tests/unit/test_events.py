"""Reading Pub/Sub deliveries (tests/events samples and malformed ones) and the ack/retry decorator."""

from __future__ import annotations

import base64
import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from cloudevents.http import CloudEvent, from_http

from shared.events import (
    MalformedMessageError,
    PubSubMessage,
    RedeliverError,
    message_from_envelope,
    message_from_event,
    pubsub_handler,
)
from shared.exceptions import GenmediaError, ServiceUnavailableError

EVENTS = Path(__file__).resolve().parent.parent / "events"


def load(name: str) -> dict[str, Any]:
    """One sample delivery from tests/events."""
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


def structured_event(body: dict[str, Any]) -> CloudEvent:
    """A structured-mode CloudEvent parsed the way functions-framework parses it."""
    return from_http({"Content-Type": "application/cloudevents+json; charset=utf-8"}, json.dumps(body))


def push_event(body: dict[str, Any]) -> CloudEvent:
    """A CloudEvent carrying a push envelope as its data (what the function sees after conversion)."""
    return CloudEvent({"id": "evt-1", "source": "//pubsub.googleapis.com/projects/p/topics/t",
                       "type": "google.cloud.pubsub.topic.v1.messagePublished"}, body)


def encoded(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_structured_cloudevent_sample_yields_its_message() -> None:
    """Eventarc structured mode: id, data, attributes, publish time and subscription come through."""
    message = message_from_event(structured_event(load("pubsub_cloudevent_structured.json")))
    assert message.message_id == "11863240582563430"
    assert message.json() == {"batch_id": "bat_sample", "item_id": "bat_sample_0000",
                              "request": {"kind": "image", "prompt": "a lighthouse at dawn"}}
    assert message.attributes["googclient_traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    assert message.publish_time == "2026-11-26T09:41:04.123Z"
    assert message.subscription == (
        "projects/my-project/subscriptions/eventarc-us-central1-batch-trigger-sub-042")
    assert message.delivery_attempt is None


def test_binary_cloudevent_sample_yields_its_message() -> None:
    """Eventarc binary mode: ce-* headers, the envelope as the JSON body."""
    sample = load("pubsub_cloudevent_binary.json")
    event = from_http(sample["headers"], json.dumps(sample["body"]))
    message = message_from_event(event)
    assert event["type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    assert message.message_id == "11863240582563431"
    assert message.json()["item_id"] == "bat_sample_0001"
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert message.attributes == {"googclient_traceparent": traceparent}


def test_event_whose_data_is_envelope_bytes_is_still_read() -> None:
    """A CloudEvent whose data stayed bytes (undecoded body) is decoded as the envelope."""
    sample = load("pubsub_cloudevent_binary.json")
    event = CloudEvent({"id": "evt-2", "source": "//pubsub.googleapis.com/projects/p/topics/t",
                        "type": "google.cloud.pubsub.topic.v1.messagePublished"},
                       json.dumps(sample["body"]).encode())
    assert message_from_event(event).json()["item_id"] == "bat_sample_0001"


def test_raw_push_sample_yields_its_message() -> None:
    """The body a direct push subscription (and the emulator) sends: both id spellings, no @type."""
    body = load("pubsub_push.json")
    message = message_from_envelope(body)
    assert message.message_id == "2070443601311540"
    assert message.json()["item_id"] == "bat_sample_0002"
    assert message.attributes == {"origin": "genmedia"}
    assert message.subscription == "projects/my-project/subscriptions/genmedia-batch-push"
    assert message_from_event(push_event(body)) == message


def test_push_with_dead_letter_policy_carries_delivery_attempt() -> None:
    """Real Pub/Sub adds `deliveryAttempt` when a dead-letter policy is set; it is kept."""
    message = message_from_envelope(load("pubsub_push_delivery_attempt.json"))
    assert message.delivery_attempt == 3
    assert message.json()["item_id"] == "bat_sample_0003"


def test_snake_case_only_message_id_is_accepted() -> None:
    """`message_id` alone (older producers) is enough."""
    body = load("pubsub_push.json")
    del body["message"]["messageId"], body["message"]["publishTime"]
    message = message_from_envelope(body)
    assert (message.message_id, message.publish_time) == ("2070443601311540", "2026-11-26T09:41:05.789Z")


def test_event_id_stands_in_for_a_missing_message_id() -> None:
    """A converted push body without messageId takes the CloudEvent id."""
    body = load("pubsub_push.json")
    del body["message"]["messageId"], body["message"]["message_id"]
    assert message_from_event(push_event(body)).message_id == "evt-1"


def test_envelope_given_as_json_bytes_is_parsed() -> None:
    """Bytes holding the envelope JSON are the same delivery as the dict."""
    body = load("pubsub_push.json")
    assert message_from_envelope(json.dumps(body).encode()) == message_from_envelope(body)


def test_message_without_data_has_empty_data_that_is_not_json() -> None:
    """An attributes-only message parses; reading it as an item payload is malformed."""
    body = load("pubsub_push.json")
    del body["message"]["data"]
    message = message_from_envelope(body)
    assert message.data == b""
    with pytest.raises(MalformedMessageError):
        message.json()


def test_google_binary_data_sample_is_not_json() -> None:
    """google-cloudevents' MessagePublishedData-binary sample (`AQIDBA==`) parses, but not as JSON."""
    body = {"subscription": "projects/my-project/subscriptions/my-subscription",
            "message": {"@type": "type.googleapis.com/google.pubsub.v1.PubsubMessage", "data": "AQIDBA==",
                        "messageId": "message-id"}}
    message = message_from_envelope(body)
    assert message.data == b"\x01\x02\x03\x04"
    with pytest.raises(MalformedMessageError):
        message.json()


def _mutated(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(load("pubsub_push.json"))
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


@pytest.mark.parametrize(
    ("envelope", "why"),
    [
        (_mutated(("message", "data"), "not base64!"), "data not base64"),
        (_mutated(("message", "data"), "eyJhIj"), "data base64 with bad padding"),
        (_mutated(("message", "data"), 12345), "data not a string"),
        (_mutated(("message", "attributes"), ["a", "b"]), "attributes not an object"),
        (_mutated(("message",), "a string"), "message not an object"),
        (_mutated(("message", "messageId"), ""), "empty message id and no other"),
        ({"subscription": "projects/p/subscriptions/s"}, "no message"),
        ({}, "empty object"),
        (None, "null"),
        ([1, 2, 3], "a list"),
        (b"{not json", "bytes that are not JSON"),
        ("a string", "a bare string"),
    ],
)
def test_malformed_envelope_raises_malformed_message(envelope: Any, why: str) -> None:
    """Every shape we cannot read is a MalformedMessageError (acked), never another exception."""
    if why == "empty message id and no other":
        del envelope["message"]["message_id"]
    with pytest.raises(MalformedMessageError):
        message_from_envelope(envelope)


def test_malformed_message_error_is_permanent() -> None:
    """Redelivering an unreadable message cannot help: it is not retryable."""
    assert MalformedMessageError.retryable is False


def test_data_that_is_not_utf8_json_is_malformed() -> None:
    """Valid base64 of bytes that are not UTF-8 JSON."""
    for data in (b"\xff\xfe\x00", b"not json", b""):
        message = PubSubMessage(message_id="1", data=data)
        with pytest.raises(MalformedMessageError):
            message.json()


def test_handler_acks_an_unparseable_delivery_and_logs_its_id_not_its_data(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Unparseable: returns (ack), one ERROR line naming the event id, without the raw data."""
    calls: list[PubSubMessage] = []
    handler = pubsub_handler(calls.append)
    secret_data = "c2VjcmV0LXBheWxvYWQ=="  # base64 with bad padding
    event = push_event(_mutated(("message", "data"), secret_data))
    with caplog.at_level(logging.INFO, logger="genmedia.events"):
        assert handler(event) is None
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert calls == []
    assert len(errors) == 1
    assert secret_data not in errors[0].getMessage()
    assert "c2VjcmV0" not in caplog.text


def test_handler_reraises_retryable_errors_so_pubsub_redelivers() -> None:
    """Transient failures propagate (non-2xx)."""

    def fail(message: PubSubMessage) -> None:
        raise ServiceUnavailableError("upstream down")

    with pytest.raises(ServiceUnavailableError):
        pubsub_handler(fail)(push_event(load("pubsub_push.json")))


def test_handler_acks_permanent_errors() -> None:
    """Permanent failures are swallowed (ack) after logging."""

    class Rejected(GenmediaError):
        retryable = False

    def fail(message: PubSubMessage) -> None:
        raise Rejected("bad request")

    assert pubsub_handler(fail)(push_event(load("pubsub_push.json"))) is None


def test_handler_reraises_unexpected_exceptions() -> None:
    """A bug is redelivered (and bounded by the attempt counter), never silently acked."""

    def crash(message: PubSubMessage) -> None:
        raise RuntimeError("bug")

    with pytest.raises(RedeliverError) as caught:
        pubsub_handler(crash)(push_event(load("pubsub_push.json")))
    assert caught.value.retryable and isinstance(caught.value.__cause__, RuntimeError)


def test_handler_passes_the_parsed_message() -> None:
    """The wrapped function receives the message the envelope holds."""
    calls: list[PubSubMessage] = []
    pubsub_handler(calls.append)(structured_event(load("pubsub_cloudevent_structured.json")))
    assert [m.message_id for m in calls] == ["11863240582563430"]
