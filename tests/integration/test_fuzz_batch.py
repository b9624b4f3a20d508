"""Hypothesis against the batch function's deliveries (raw push, binary and structured CloudEvents): message
bodies, data and attributes of every shape, real and unknown items, on the real PostgreSQL.

Whatever arrives, no exception escapes as a 500, and nothing loops: redelivered as Pub/Sub would, every
message is acknowledged (2xx) within MAX_DELIVERY_ATTEMPTS deliveries. Bounded by FUZZ_EXAMPLES.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shared import config
from shared.batches import NewBatch, create_batches
from shared.database import session_scope
from shared.media.capabilities import resolve
from shared.media.request import GenerationRequest
from shared.tables import JobRow
from tests.servers import make_client

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15")) * 10  # a delivery is cheap: most are refused early
MAX_ATTEMPTS = 3
BATCH = "bat_fuzz"
ITEMS = [f"{BATCH}_{i:04d}" for i in range(4)]
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
# Generation requests shaped by the model's own fields, with values of any type.
requests = st.fixed_dictionaries(
    {"kind": st.sampled_from(["image", "video", "audio"]), "prompt": st.text(max_size=30)},
    optional={name: json_values for name in GenerationRequest.model_fields if name not in ("kind", "prompt")},
)
item_payloads = st.fixed_dictionaries(
    {"batch_id": st.sampled_from([BATCH, "bat_unknown"]) | st.text(max_size=20),
     "item_id": st.sampled_from(ITEMS) | st.text(max_size=40)},
    optional={"request": requests | json_values, "extra": json_values},
)
data_bytes = st.one_of(
    item_payloads.map(lambda p: json.dumps(p).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=40),
)
data_fields = data_bytes.map(lambda b: base64.b64encode(b).decode()) | json_values
attributes = st.dictionaries(
    st.sampled_from(["googclient_traceparent", "traceparent", "origin"]) | st.text(max_size=12),
    st.just(TRACEPARENT) | st.text(max_size=60),
    max_size=3,
) | json_values
message_ids = st.text(min_size=1, max_size=20) | json_values
messages = st.fixed_dictionaries(
    {"data": data_fields, "messageId": message_ids},
    optional={"attributes": attributes, "message_id": message_ids, "publishTime": json_values,
              "deliveryAttempt": st.integers(-3, 10) | st.text(max_size=4) | json_values},
)
envelopes = st.fixed_dictionaries(
    {"message": messages | json_values},
    optional={"subscription": st.just("projects/p/subscriptions/s") | json_values,
              "deliveryAttempt": st.integers(-3, 10) | st.text(max_size=4)},
) | json_values
ce_ids = st.text(min_size=1, max_size=20, alphabet=st.characters(min_codepoint=33, max_codepoint=126))


def as_raw_push(envelope: Any) -> dict[str, Any]:
    return {"data": json.dumps(envelope), "headers": {"Content-Type": "application/json"}}


def as_binary_event(envelope: Any, event_id: str) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", "ce-id": event_id, "ce-specversion": "1.0",
               "ce-source": "//pubsub.googleapis.com/projects/p/topics/t",
               "ce-type": "google.cloud.pubsub.topic.v1.messagePublished"}
    return {"data": json.dumps(envelope), "headers": headers}


def as_structured_event(envelope: Any, event_id: str) -> dict[str, Any]:
    event = {"specversion": "1.0", "id": event_id, "source": "//pubsub.googleapis.com/projects/p/topics/t",
             "type": "google.cloud.pubsub.topic.v1.messagePublished", "data": envelope}
    return {"data": json.dumps(event), "headers": {"Content-Type": "application/cloudevents+json"}}


deliveries = st.one_of(
    envelopes.map(as_raw_push),
    st.builds(as_binary_event, envelopes, ce_ids),
    st.builds(as_structured_event, envelopes, ce_ids),
    st.builds(lambda body, kind: {"data": body, "headers": {"Content-Type": kind}},
              st.binary(max_size=60), st.sampled_from(["application/json", "application/cloudevents+json",
                                                        "text/plain", "application/octet-stream"])),
)


@pytest.fixture
def batch_client(db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The batch function on the local backend, with a recorded batch whose items messages can name."""
    monkeypatch.setenv("GENERATION_BACKEND", "local")
    monkeypatch.setenv("LOCAL_DATA_DIR", str(tmp_path / "media"))
    monkeypatch.setenv("LOCAL_VIDEO_DELAY_SECONDS", "0")
    monkeypatch.setenv("MAX_DELIVERY_ATTEMPTS", str(MAX_ATTEMPTS))
    config.get_settings.cache_clear()
    kinds = ["image", "video", "image", "image"]
    requests_ = [resolve(GenerationRequest(kind=k, prompt=f"item {i}")) for i, k in enumerate(kinds)]  # type: ignore[arg-type]
    with session_scope() as session:
        create_batches(session, [NewBatch(id=BATCH, owner_id="fuzzer", requests=requests_)], topic="batches")
    return make_client("batch")


def item_delivery(item_id: str, shape: str) -> dict[str, Any]:
    """A well-formed delivery of one recorded item, as the outbox would publish it."""
    data = json.dumps({"batch_id": BATCH, "item_id": item_id, "request": {"kind": "image", "prompt": "x"}})
    envelope = {"message": {"data": base64.b64encode(data.encode()).decode(), "messageId": f"m-{item_id}",
                            "attributes": {"googclient_traceparent": TRACEPARENT}}}
    if shape == "binary":
        return as_binary_event(envelope, f"m-{item_id}")
    return as_structured_event(envelope, f"m-{item_id}") if shape == "structured" else as_raw_push(envelope)


def recorded_statuses() -> list[str]:
    with session_scope() as session:
        return [str(session.get(JobRow, item_id).status) for item_id in ITEMS]  # type: ignore[union-attr]


def test_any_delivery_is_acked_within_max_attempts_and_never_a_500(batch_client: Any) -> None:
    # Real items in every envelope shape, so the processing path is always among the cases.
    @example(delivery=item_delivery(ITEMS[0], "push"))
    @example(delivery=item_delivery(ITEMS[1], "binary"))
    @example(delivery=item_delivery(ITEMS[2], "structured"))
    @example(delivery=item_delivery(ITEMS[0], "structured"))
    @given(delivery=deliveries)
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    def deliver_until_acked(delivery: dict[str, Any]) -> None:
        statuses = []
        for _ in range(MAX_ATTEMPTS + 1):  # Pub/Sub redelivers whatever is not acknowledged
            response = batch_client.post("/", data=delivery["data"], headers=delivery["headers"])
            statuses.append(response.status_code)
            if 200 <= response.status_code < 300:
                return
            assert response.status_code == 503 and response.headers.get("Retry-After"), statuses
        raise AssertionError(f"never acknowledged after {len(statuses)} deliveries: {statuses}")

    deliver_until_acked()
    assert recorded_statuses()[:3] == ["succeeded", "running", "succeeded"]  # the video's operation started
