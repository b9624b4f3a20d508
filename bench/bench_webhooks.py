"""Webhook delivery against a local receiver (its own process, 127.0.0.1):

- throughput: 400 due deliveries sent by the sender (claim, render, sign, SSRF check, POST to the
  checked address, record: everything a real delivery does) against a plain `requests.post` loop of
  the same bodies to the same receiver (goal >= 0.5x);
- latency: the time from the commit that finishes a job to its webhook arriving (median of 40),
  through the dispatcher as in production.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
import sqlalchemy as sa

from bench.stats import median, report

DELIVERIES = 400
LATENCY_JOBS = 40
OWNER = "0123456789ab"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    arrivals: dict[str, float]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        hook_id = self.headers.get("webhook-id")
        if hook_id:
            self.arrivals[hook_id] = time.monotonic()  # CLOCK_MONOTONIC: the same clock in every process
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        body = json.dumps(self.arrivals).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default listen backlog of 5 drops concurrent SYNs (1 s retransmits)


def _serve(port_queue: Any) -> None:
    _Handler.arrivals = {}
    server = _Server(("127.0.0.1", 0), _Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


def _jobs_with_webhooks(url: str, receiver: str, count: int, *, due: bool) -> list[str]:
    """`count` single generations with a webhook: finished and due (throughput), or running (latency)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    status, state = ("succeeded", "pending") if due else ("running", "waiting")
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE jobs, batches, webhook_deliveries CASCADE"))
        conn.execute(sa.text(
            "INSERT INTO jobs (id, owner_id, kind, model, status, request, outputs) "
            "SELECT 'gen_bench_' || g, :owner, 'image', 'imagen-4.0-generate-001', :status, "
            "'{\"kind\": \"image\", \"prompt\": \"a lighthouse\"}'::jsonb, "
            "'[{\"uri\": \"gs://bench/a.png\", \"mime_type\": \"image/png\"}]'::jsonb FROM generate_series(1, :n) g"),
            {"owner": OWNER, "status": status, "n": count})
        conn.execute(sa.text(
            "INSERT INTO webhook_deliveries (id, owner_id, subject_id, subject_kind, url, state, event_type, "
            "event_at, next_attempt_at) SELECT 'msg_bench_' || g, :owner, 'gen_bench_' || g, 'generation', :url, "
            ":state, CASE WHEN :due THEN 'generation.succeeded' END, CASE WHEN :due THEN now() END, "
            "CASE WHEN :due THEN now() END FROM generate_series(1, :n) g"),
            {"owner": OWNER, "url": receiver, "state": state, "due": due, "n": count})
    engine.dispose()
    return [f"gen_bench_{i}" for i in range(1, count + 1)]


def _ours(url: str, receiver: str) -> float:
    from shared.webhooks.sender import deliver_due

    _jobs_with_webhooks(url, receiver, DELIVERIES, due=True)
    started = time.perf_counter()
    sent = 0
    while sent < DELIVERIES:
        sent += deliver_due(budget_seconds=600)
    return DELIVERIES / (time.perf_counter() - started)


def _plain(receiver: str, body: bytes) -> float:
    started = time.perf_counter()
    for _ in range(DELIVERIES):
        requests.post(receiver, data=body, headers={"Content-Type": "application/json"}, timeout=15)
    return DELIVERIES / (time.perf_counter() - started)


def _latencies(url: str, receiver: str) -> list[float]:
    """Finish jobs one by one (each commit hands its webhook to the dispatcher); arrival minus commit."""
    from shared.database import session_scope
    from shared.jobs import mark_succeeded
    from shared.webhooks import dispatch

    dispatch.enable()
    finished: dict[str, float] = {}
    for job_id in _jobs_with_webhooks(url, receiver, LATENCY_JOBS, due=False):
        with session_scope() as session:
            mark_succeeded(session, job_id, [])
        finished[job_id.replace("gen_", "msg_")] = time.monotonic()
        time.sleep(0.02)  # one at a time, as jobs finish in life, not a burst
    dispatch.wait_idle(60)
    arrivals = requests.get(receiver, timeout=5).json()
    return [arrivals[hook_id] - at for hook_id, at in finished.items() if hook_id in arrivals]


def main(database_url: str, rounds: int = 3) -> list[str]:
    """Throughput against the plain loop (interleaved rounds), then latency."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["WEBHOOK_ALLOW_PRIVATE"] = "true"
    from shared import config

    config.get_settings.cache_clear()
    ports: Any = multiprocessing.get_context("fork").Queue()
    server = multiprocessing.get_context("fork").Process(target=_serve, args=(ports,), daemon=True)
    server.start()
    receiver = f"http://127.0.0.1:{ports.get(timeout=10)}/hook"
    body = json.dumps({"type": "generation.succeeded", "timestamp": "2026-12-02T00:00:00.000Z",
                       "data": {"id": "gen_bench_1", "status": "succeeded"}}).encode()
    try:
        ours, plain = [], []
        for _ in range(rounds):
            ours.append(_ours(database_url, receiver))
            plain.append(_plain(receiver, body))
        lines = [report("webhook deliveries/s to a local receiver", median(ours),
                        "a plain requests.post loop", median(plain), "deliveries/s", goal=">= 0.5x")]
        latencies = _latencies(database_url, receiver)
        lines.append(f"webhook latency, job finished -> arrived: median {median(latencies) * 1000:.1f} ms "
                     f"(max {max(latencies) * 1000:.1f} ms, {len(latencies)}/{LATENCY_JOBS} arrived)")
        print(lines[-1], flush=True)
        return lines
    finally:
        server.terminate()
