"""Every log-based metric in Terraform counts fields that real log lines carry.

The lines come from the code doing the real thing (a generation, a tick, a Vertex 429 from the
stand-in, an exhausted pool), captured as stdout would show them; the metric definitions come from
infra/modules/observability/metrics.tf, parsed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import hcl2
import pytest
import sqlalchemy as sa

from shared import config, database
from shared.database import session_scope
from shared.exceptions import PoolExhaustedError, QuotaExceededError
from shared.logging import capture_logs
from shared.media.backends import get_backend
from shared.media.request import GenerationRequest
from shared.quotas.admission import admit_sync
from shared.quotas.queue import close_windows
from shared.telemetry import metrics
from shared.webhooks import dispatch
from tests.conftest import ROOT
from tests.servers import make_client
from tests.standin.webhook_receiver import Scripted, running_receiver

METRICS_TF = ROOT / "infra" / "modules" / "observability" / "metrics.tf"
HCL_OPTIONS = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)


def defined_metrics() -> dict[str, dict[str, Any]]:
    """metric name -> {fact, labels, field?} from the locals of metrics.tf."""
    with METRICS_TF.open() as handle:
        parsed = hcl2.load(handle, serialization_options=HCL_OPTIONS)
    merged: dict[str, Any] = {}
    for block in parsed["locals"]:
        merged.update(block)
    return {**merged["counters"], **merged["distributions"]}


def facts(lines: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [line["metric"] for line in lines if line.get("metric", {}).get("name") == name]


@pytest.fixture
def real_lines(api_key: str, db: Any, vertex_env: dict[str, str], vertex_standin: Any,
               monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[list[dict[str, Any]]]:
    """Log lines of a local generation whose webhook fails, a quota window, a tick, a Vertex 429 and an
    exhausted pool."""
    with capture_logs() as lines:
        monkeypatch.setenv("GENERATION_BACKEND", "local")
        monkeypatch.setenv("LOCAL_DATA_DIR", str(tmp_path))
        monkeypatch.setenv("PUBSUB_BATCH_TOPIC", "metric-facts")
        config.get_settings.cache_clear()
        with running_receiver() as (receiver, url):
            receiver.default = Scripted(500)  # every webhook attempt fails, and is retried later
            generated = make_client("generation", key=api_key).post(
                "/v1/generations", json={"kind": "image", "prompt": "a counted fox", "webhook_url": url})
            assert generated.status_code == 201
            receiver.wait_for(1)
            dispatch.wait_idle()
        close_a_quota_window(monkeypatch)
        from functions.scheduling.tick import tick

        tick(job_name=None, schedule_time=None)
        refuse_for_quota(monkeypatch, vertex_standin)
        exhaust_the_pool(monkeypatch, db.url)
        yield lines


def close_a_quota_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """One synchronous admission in a 1 s window of a paced model, then the window closes."""
    monkeypatch.setenv("VERTEX_QUOTAS", "imagen-4.0-generate-001=100/1")
    config.get_settings.cache_clear()
    with session_scope() as session:
        admit_sync(session, "imagen-4.0-generate-001")
    time.sleep(1.2)
    assert close_windows() >= 1


def refuse_for_quota(monkeypatch: pytest.MonkeyPatch, vertex_standin: Any) -> None:
    monkeypatch.setenv("GENERATION_BACKEND", "vertex")
    config.get_settings.cache_clear()
    vertex_standin.retry_after = 0.05
    vertex_standin.queue("quota", times=100)
    with pytest.raises(QuotaExceededError):
        get_backend(config.get_settings()).generate_image(
            GenerationRequest(kind="image", prompt="x", model="imagen-4.0-generate-001"),
            job_id="job-metric-1")


def exhaust_the_pool(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """One connection, held by another thread: the next checkout waits, then times out."""
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DB_POOL_SIZE", "1")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "0")
    monkeypatch.setenv("DB_POOL_TIMEOUT", "0.2")
    config.get_settings.cache_clear()
    database.dispose_engine()
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with database.session_scope() as session:
            session.execute(sa.text("SELECT 1"))
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    with pytest.raises(PoolExhaustedError), database.session_scope() as session:
        session.execute(sa.text("SELECT 1"))
    # A checkout that waits for the connection to come back is slow, but served.
    threading.Timer(0.1, release.set).start()
    with database.session_scope() as session:
        session.execute(sa.text("SELECT 1"))
    holder.join()


def test_every_log_based_metric_names_fields_that_real_lines_carry(real_lines: list[dict[str, Any]]) -> None:
    for name, metric in defined_metrics().items():
        found = facts(real_lines, metric["fact"])
        assert found, f"{name}: no real line carries metric.name={metric['fact']}"
        for fact in found:
            for label in metric["labels"]:
                assert isinstance(fact.get(label), str) and fact[label], f"{name}: label {label} in {fact}"
            if "field" in metric:
                assert isinstance(fact.get(metric["field"]), int | float), f"{name}: {metric['field']} in {fact}"


def test_every_fact_the_code_can_log_has_a_metric() -> None:
    defined = {metric["fact"] for metric in defined_metrics().values()}
    declared = {getattr(metrics, name) for name in metrics.__all__ if name.isupper()}
    assert declared <= defined, f"facts without a log-based metric: {declared - defined}"


def test_the_generation_request_metric_reads_fields_of_the_access_line(api_key: str, db: Any) -> None:
    """The SLO's metric filters on httpRequest.{requestMethod,requestUrl,status,latency}: the access
    line's jsonPayload.httpRequest, which Cloud Logging lifts into the entry's httpRequest."""
    text = METRICS_TF.read_text()
    named = {"requestMethod", "requestUrl", "status", "latency"}
    assert all(f"httpRequest.{field}" in text for field in named)
    with capture_logs() as lines:
        make_client("generation", key=api_key).post("/v1/generations", json={"kind": "image", "prompt": ""})
    (access,) = [line["httpRequest"] for line in lines if "httpRequest" in line]
    assert named <= set(access)
    assert access["requestMethod"] == "POST" and access["requestUrl"].startswith("/v1/generations")
    assert access["latency"].endswith("s")
