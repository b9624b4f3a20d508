"""Traces with the real OpenTelemetry SDK and its in-memory exporter: what Cloud Trace would receive."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared import config
from shared.logging import capture_logs
from shared.telemetry import tracing
from tests.conftest import ROOT
from tests.servers import make_client

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
SPAN_ID = "logging.googleapis.com/spanId"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.use_exporter(exporter)
    yield exporter
    tracing.reset()


@pytest.fixture
def vertex_client(db: Any, api_key: str, vertex_env: dict[str, str]) -> Any:
    """The generation function calling the Vertex stand-in through the real google-genai client."""
    config.get_settings.cache_clear()
    return make_client("generation", key=api_key)


def traceparent(sampled: bool = True) -> dict[str, str]:
    return {"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN}-{'01' if sampled else '00'}"}


def hex_id(value: int) -> str:
    return f"{value:016x}"


def by_name(finished: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in finished if span.name == name]


def test_a_sampled_request_is_a_span_in_the_inbound_trace_with_children(
    generation_client: Any, spans: InMemorySpanExporter
) -> None:
    with capture_logs() as logs:
        response = generation_client.post("/v1/generations", json={"kind": "image", "prompt": "a traced fox"},
                                          headers=traceparent())
    assert response.status_code == 201
    finished = spans.get_finished_spans()
    assert {f"{span.context.trace_id:032x}" for span in finished} == {TRACE_ID}
    (root,) = by_name(finished, "POST /v1/generations")
    assert root.parent is not None and hex_id(root.parent.span_id) == PARENT_SPAN
    assert root.attributes is not None and root.attributes["http.response.status_code"] == 201
    transactions = by_name(finished, "db transaction")
    assert len(transactions) >= 2, "recording the job and its outcome are two transactions"
    assert all(span.parent is not None and span.parent.span_id == root.context.span_id for span in transactions)
    # Cloud Logging links each line to its span: every line's spanId names a recorded span, and the
    # request's access line names the request's span.
    recorded = {hex_id(span.context.span_id) for span in finished}
    assert logs and all(line[SPAN_ID] in recorded for line in logs)
    (access,) = [line for line in logs if "httpRequest" in line]
    assert access[SPAN_ID] == hex_id(root.context.span_id)


def test_a_vertex_call_is_a_child_span(vertex_client: Any, spans: InMemorySpanExporter) -> None:
    response = vertex_client.post("/v1/generations", headers=traceparent(),
                                  json={"kind": "image", "prompt": "x", "model": "imagen-4.0-generate-001"})
    assert response.status_code == 201
    finished = spans.get_finished_spans()
    (root,) = by_name(finished, "POST /v1/generations")
    (call,) = [span for span in finished if span.name.startswith("vertex imagen-4.0-generate-001")]
    assert call.parent is not None and call.parent.span_id == root.context.span_id


def test_an_unsampled_or_untraced_request_records_nothing(
    generation_client: Any, spans: InMemorySpanExporter
) -> None:
    assert generation_client.get("/healthz", headers=traceparent(sampled=False)).status_code == 200
    assert generation_client.get("/healthz").status_code == 200
    assert spans.get_finished_spans() == ()


def test_the_span_of_an_error_carries_no_message(generation_client: Any, spans: InMemorySpanExporter) -> None:
    response = generation_client.post("/v1/generations", json={"kind": "image", "prompt": ""},
                                      headers=traceparent())
    assert response.status_code == 400
    exported = json.dumps([json.loads(span.to_json()) for span in spans.get_finished_spans()])
    assert "must not be empty" not in exported and "prompt" not in exported


def test_a_batch_item_continues_the_trace_of_the_request_that_submitted_it(
    api_key: str, spans: InMemorySpanExporter, db: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # The outbox row keeps what would be published (nothing listens on port 9): we push it ourselves.
    for name, value in {"PUBSUB_BATCH_TOPIC": "batches", "PUBSUB_EMULATOR_HOST": "127.0.0.1:9",
                        "PUBSUB_PUBLISH_TIMEOUT_SECONDS": "0.2", "LOCAL_DATA_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    config.get_settings.cache_clear()
    generation_client, batch_client = make_client("generation", key=api_key), make_client("batch")
    submitted = generation_client.post("/v1/batches", json={"items": [{"kind": "image", "prompt": "a"}]},
                                       headers=traceparent())
    assert submitted.status_code == 202, submitted.text
    (request_span,) = by_name(spans.get_finished_spans(), "POST /v1/batches")
    engine = sa.create_engine(db.url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        payload, attributes = conn.execute(sa.text("SELECT payload, attributes FROM outbox")).one()
    engine.dispose()
    spans.clear()
    data = base64.b64encode(json.dumps(payload).encode()).decode()
    pushed = batch_client.post("/", json={"message": {"data": data, "messageId": "77", "attributes": attributes},
                                          "subscription": "projects/p/subscriptions/s"})
    assert pushed.status_code == 200
    (consumer,) = by_name(spans.get_finished_spans(), "pubsub message")
    assert f"{consumer.context.trace_id:032x}" == TRACE_ID
    # Its parent is a span of the submitting request: Cloud Trace draws the item under the POST.
    assert consumer.parent is not None and consumer.parent.trace_id == request_span.context.trace_id


@pytest.mark.parametrize(("headers", "loaded"), [({}, False), (traceparent(sampled=False), False),
                                                 (traceparent(), True)])
def test_the_sdk_loads_on_the_first_sampled_request_not_at_import(headers: dict[str, str], loaded: bool) -> None:
    """Cold starts never pay for OpenTelemetry; a sampled request does, once."""
    program = (
        "import sys, functions_framework\n"
        "app = functions_framework.create_app(target='generation', source='functions/generation/main.py')\n"
        f"assert app.test_client().get('/healthz', headers={headers!r}).status_code == 200\n"
        "print(any(name.startswith('opentelemetry') for name in sys.modules))\n"
    )
    env = {**os.environ, "TRACE_EXPORTER": "console"}
    result = subprocess.run([sys.executable, "-c", program], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120, check=True)
    assert result.stdout.strip().splitlines()[-1] == str(loaded)
    if loaded:  # the console exporter writes one JSON object per span to stderr, never to stdout
        exported = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
        assert [span["name"] for span in exported] == ["GET /healthz"]

