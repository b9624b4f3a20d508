"""Webhooks end to end in one process: real PostgreSQL, the real functions, a real receiver on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook

from shared import config
from shared.database import session_scope
from shared.jobs import mark_succeeded
from shared.logging import capture_logs
from shared.webhooks import dispatch, sender
from tests.integration.webhooks.conftest import push
from tests.standin.webhook_receiver import Scripted, WebhookReceiver

IMAGE = {"kind": "image", "prompt": "a red fox in fresh snow"}


def delivery(subject_id: str) -> dict[str, Any]:
    with session_scope() as session:
        row = session.execute(sa.text("SELECT * FROM webhook_deliveries WHERE subject_id = :s"),
                              {"s": subject_id}).mappings().one()
    return dict(row)


def make_due_now(subject_id: str) -> None:
    with session_scope() as session:
        session.execute(sa.text("UPDATE webhook_deliveries SET next_attempt_at = now() WHERE subject_id = :s"),
                        {"s": subject_id})


def eventually(check: Any, timeout: float = 30.0) -> Any:
    """Poll `check()` until it returns something truthy (no upper bound is asserted, only waited for)."""
    deadline = time.monotonic() + timeout
    while not (found := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def webhook_of(client: Any, path: str) -> Any:
    return client.get(path).get_json()["webhook"]


def secret(client: Any) -> str:
    response = client.get("/v1/webhooks/secret")
    assert response.status_code == 200
    value = response.get_json()["secret"]
    assert isinstance(value, str) and value.startswith("whsec_")
    return value


def test_an_image_sends_one_signed_generation_succeeded(client: Any, receiver: tuple[WebhookReceiver, str]) -> None:
    app, url = receiver
    response = client.post("/v1/generations", json={**IMAGE, "webhook_url": url + "/hooks?src=genmedia"})
    assert response.status_code == 201
    job = response.get_json()
    (got,) = app.wait_for(1)
    event = Webhook(secret(client)).verify(got.request.body, got.request.headers)
    assert event["type"] == "generation.succeeded" and event["data"]["id"] == job["id"]
    # Links are minted per response (a webhook sent outside a request has one only with DOWNLOAD_BASE_URL).
    stored = [{k: v for k, v in o.items() if k != "url"} for o in job["outputs"]]
    assert event["data"]["status"] == "succeeded"
    assert [{k: v for k, v in o.items() if k != "url"} for o in event["data"]["outputs"]] == stored
    assert got.request.path == "/hooks" and got.request.query == {"src": ["genmedia"]}
    assert got.webhook_id.startswith("msg_")
    dispatch.wait_idle()
    assert client.get(f"/v1/generations/{job['id']}").get_json()["webhook"] == {"state": "delivered", "attempts": 1}


def test_jobs_without_a_webhook_show_none(client: Any) -> None:
    job = client.post("/v1/generations", json=IMAGE).get_json()
    assert job["webhook"] is None


def test_a_failed_first_delivery_is_retried_with_the_same_webhook_id(
    client: Any, receiver: tuple[WebhookReceiver, str],
) -> None:
    app, url = receiver
    app.replies = [Scripted(500)]
    job = client.post("/v1/generations", json={**IMAGE, "webhook_url": url}).get_json()
    first, second = app.wait_for(2, timeout=30)  # the 5 s retry, sent by the dispatcher
    assert first.webhook_id == second.webhook_id
    assert second.at - first.at >= 4.0  # the first retry is due 5 s (+-10%) after the failure
    key = secret(client)
    for got in (first, second):
        Webhook(key).verify(got.request.body, got.request.headers)
    path = f"/v1/generations/{job['id']}"
    assert eventually(lambda: webhook_of(client, path)["state"] == "delivered")
    assert webhook_of(client, path) == {"state": "delivered", "attempts": 2}


def test_410_stops_the_delivery(client: Any, receiver: tuple[WebhookReceiver, str]) -> None:
    app, url = receiver
    app.default = Scripted(410)
    job = client.post("/v1/generations", json={**IMAGE, "webhook_url": url}).get_json()
    app.wait_for(1)
    dispatch.wait_idle()
    make_due_now(job["id"])
    assert sender.deliver() == []  # nothing due: a failed delivery is final
    assert client.get(f"/v1/generations/{job['id']}").get_json()["webhook"] == {"state": "failed", "attempts": 1}
    assert len(app.received) == 1


@pytest.mark.parametrize(("reply", "reason"), [
    (Scripted(503), "HTTP_503"), (Scripted(429, {"Retry-After": "600"}), "HTTP_429"),
    (Scripted(200, delay=3), "TIMEOUT"), (Scripted(302, {"Location": "http://169.254.169.254/"}), "HTTP_302"),
])
def test_failures_are_scheduled_for_retry(
    client: Any, receiver: tuple[WebhookReceiver, str], reply: Scripted, reason: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, url = receiver
    monkeypatch.setenv("WEBHOOK_TIMEOUT_SECONDS", "1")  # the hanging receiver answers after 3 s
    config.get_settings.cache_clear()
    app.default = reply
    dispatch_enabled = dispatch._enabled
    dispatch._enabled = False  # send from this thread, to read the result
    try:
        job = client.post("/v1/generations", json={**IMAGE, "webhook_url": url}).get_json()
    finally:
        dispatch._enabled = dispatch_enabled
    (result,) = sender.deliver()
    assert (result.outcome, result.error) == ("retry", reason)
    assert result.delay is not None and (result.delay >= 600 if reply.status == 429 else 4.5 <= result.delay <= 5.5)
    row = delivery(job["id"])
    assert row["state"] == "pending" and row["attempts"] == 1 and row["last_error"] == reason
    assert len(app.received) == 1  # the redirect was not followed


def test_an_unreachable_receiver_fails_after_the_last_attempt(client: Any) -> None:
    dispatch._enabled, was = False, dispatch._enabled
    try:
        job = client.post("/v1/generations", json={**IMAGE, "webhook_url": "http://127.0.0.1:9/"}).get_json()
    finally:
        dispatch._enabled = was
    with session_scope() as session:
        session.execute(sa.text("UPDATE webhook_deliveries SET attempts = 7 WHERE subject_id = :s"), {"s": job["id"]})
    (result,) = sender.deliver()
    assert (result.outcome, result.error) == ("failed", "CONNECTION_FAILED")
    assert client.get(f"/v1/generations/{job['id']}").get_json()["webhook"] == {"state": "failed", "attempts": 8}


def test_a_delivery_committed_but_never_sent_is_sent_by_the_tick(
    client: Any, receiver: tuple[WebhookReceiver, str],
) -> None:
    """The process "dies" between the commit that finished the job and the first attempt."""
    app, url = receiver
    dispatch._enabled, was = False, dispatch._enabled
    try:
        job = client.post("/v1/generations", json={**IMAGE, "webhook_url": url}).get_json()
    finally:
        dispatch._enabled = was
    assert delivery(job["id"])["state"] == "pending" and app.received == []
    from functions.scheduling import tick

    result = tick.tick(job_name=None, schedule_time=None)
    assert result.webhook_attempts == 1
    assert app.wait_for(1)[0].request.json()["data"]["id"] == job["id"]


def test_a_name_that_resolves_to_loopback_only_at_send_time_is_never_called(
    client: Any, receiver: tuple[WebhookReceiver, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, url = receiver
    port = url.rsplit(":", 1)[1]
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE", "false")
    config.get_settings.cache_clear()
    dispatch._enabled, was = False, dispatch._enabled
    try:  # https://rebind.example resolves nowhere now: accepted, judged again when sent
        job = client.post("/v1/generations", json={**IMAGE, "webhook_url": f"https://rebind.example:{port}/"})
    finally:
        dispatch._enabled = was
    assert job.status_code == 201
    (result,) = sender.deliver(resolve=lambda host, p: ["127.0.0.1"])
    assert (result.outcome, result.error) == ("failed", "UNSAFE_TARGET")
    assert app.received == []


@pytest.mark.parametrize("url", [
    "http://example.com/hook", "https://127.0.0.1/", "https://2130706433/", "https://0x7f.1/",
    "https://[::ffff:127.0.0.1]/", "https://169.254.169.254/", "https://metadata.google.internal./",
    "https://user:pw@example.com/", "https://10.0.0.8/", "https://localhost/", "not a url",
])
def test_unsafe_urls_are_a_400_naming_webhook_url(
    client: Any, url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE", "false")
    config.get_settings.cache_clear()
    for path, body in (("/v1/generations", {**IMAGE, "webhook_url": url}),
                       ("/v1/batches", {"items": [IMAGE], "webhook_url": url})):
        response = client.post(path, json=body)
        assert response.status_code == 400, (path, response.get_json())
        error = response.get_json()["error"]
        assert error["details"][0]["metadata"]["field"] == "webhook_url"
        assert error["message"].startswith("webhook_url: ")


def test_metadata_is_refused_even_in_development(client: Any) -> None:
    response = client.post("/v1/generations", json={**IMAGE, "webhook_url": "http://169.254.169.254/"})
    assert response.status_code == 400
    assert client.post("/v1/generations", json={**IMAGE, "webhook_url": "http://127.0.0.1:1/"}).status_code == 201


def test_batch_items_may_not_carry_their_own_webhook(client: Any) -> None:
    response = client.post("/v1/batches", json={"items": [{**IMAGE, "webhook_url": "https://example.com/"}]})
    assert response.status_code == 400
    assert response.get_json()["error"]["details"][0]["metadata"]["field"] == "items[0].webhook_url"


def test_a_batch_sends_exactly_one_batch_completed_with_its_counts(
    client: Any, batch_fn: Any, receiver: tuple[WebhookReceiver, str],
) -> None:
    app, url = receiver
    items = [{**IMAGE, "prompt": f"prompt {i}"} for i in range(6)]
    batch = client.post("/v1/batches", json={"items": items, "webhook_url": url}).get_json()
    assert batch["webhook"] == {"state": "pending", "attempts": 0}
    threads = [threading.Thread(target=push, args=(batch_fn, batch["id"], i, items[i])) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i in range(6):  # redeliveries change nothing
        push(batch_fn, batch["id"], i, items[i])
    (got,) = app.wait_for(1)
    dispatch.wait_idle()
    time.sleep(0.5)
    assert len(app.received) == 1
    event = Webhook(secret(client)).verify(got.request.body, got.request.headers)
    assert event["type"] == "batch.completed" and event["data"]["id"] == batch["id"]
    assert event["data"]["status"] == "succeeded" and event["data"]["counts"]["succeeded"] == 6
    assert client.get(f"/v1/batches/{batch['id']}").get_json()["webhook"] == {"state": "delivered", "attempts": 1}


@pytest.fixture
def wide_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """Room for concurrent transactions (one connection would serialize them and hide every race)."""
    monkeypatch.setenv("DB_POOL_SIZE", "10")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "30")
    config.get_settings.cache_clear()
    from shared.database import dispose_engine

    dispose_engine()


def test_items_finishing_at_once_make_batch_completed_due_exactly_once(client: Any, wide_pool: None) -> None:
    """Forty items finish in forty concurrent transactions, a few times over: one event each time."""
    dispatch._enabled, was = False, dispatch._enabled
    try:
        for _ in range(3):
            batch = client.post("/v1/batches", json={"items": [IMAGE] * 40,
                                                     "webhook_url": "http://127.0.0.1:9/"}).get_json()
            start = threading.Barrier(40)

            def finish(index: int, batch_id: str = batch["id"], barrier: threading.Barrier = start) -> None:
                barrier.wait()
                with session_scope() as session:
                    mark_succeeded(session, f"{batch_id}_{index:04d}", [])

            threads = [threading.Thread(target=finish, args=(i,)) for i in range(40)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            row = delivery(batch["id"])
            assert (row["state"], row["event_type"]) == ("pending", "batch.completed")
    finally:
        dispatch._enabled = was


def test_the_last_two_items_finishing_in_overlapping_transactions_still_fire(client: Any, wide_pool: None) -> None:
    """A finishes, B finishes before A commits: B must wait for A's commit and then see it, not miss it."""
    dispatch._enabled, was = False, dispatch._enabled
    try:
        batch = client.post("/v1/batches", json={"items": [IMAGE, IMAGE], "webhook_url": "http://127.0.0.1:9/"})
    finally:
        dispatch._enabled = was
    batch_id = batch.get_json()["id"]
    a_finished, commit_a = threading.Event(), threading.Event()

    def finish_a() -> None:
        with session_scope() as session:
            mark_succeeded(session, f"{batch_id}_0000", [])
            a_finished.set()
            commit_a.wait(10)

    def finish_b() -> None:
        with session_scope() as session:
            mark_succeeded(session, f"{batch_id}_0001", [])

    first = threading.Thread(target=finish_a)
    first.start()
    assert a_finished.wait(10)
    second = threading.Thread(target=finish_b)
    second.start()
    second.join(0.5)  # B blocks on the batch's webhook row until A commits
    commit_a.set()
    first.join()
    second.join()
    row = delivery(batch_id)
    assert (row["state"], row["event_type"]) == ("pending", "batch.completed")


def test_each_attempt_logs_one_line_without_secret_or_body(
    client: Any, receiver: tuple[WebhookReceiver, str],
) -> None:
    app, url = receiver
    app.replies = [Scripted(500)]
    with capture_logs() as logs:
        job = client.post("/v1/generations", json={**IMAGE, "webhook_url": url + "/in?token=s3cr3t-t0ken"}).get_json()
        app.wait_for(2)
        eventually(lambda: len([line for line in logs if line.get("webhook_id")]) >= 2)
    attempts = [line for line in logs if line.get("webhook_id")]
    assert [(a["attempt"], a["outcome"], a["http_status"]) for a in attempts] == [(1, "retry", 500),
                                                                               (2, "delivered", 200)]
    assert attempts[0]["event_type"] == "generation.succeeded" and attempts[0]["next_retry_at"]
    text = json.dumps(logs)
    assert secret(client)[6:] not in text and "s3cr3t-t0ken" not in text
    assert app.received[0].request.body.decode() not in text and job["prompt"] not in json.dumps(attempts)


def test_a_schedules_runs_carry_its_webhook(env: None, api_key: str, receiver: tuple[WebhookReceiver, str]) -> None:
    from datetime import UTC, datetime, timedelta

    from functions.scheduling import tick
    from tests.servers import make_client

    app, url = receiver
    scheduling = make_client("scheduling", key=api_key)
    run_at = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    created = scheduling.post("/v1/schedules", json={"request": IMAGE, "run_at": run_at, "webhook_url": url})
    assert created.status_code == 201 and created.get_json()["webhook_url"] == url
    assert scheduling.post("/v1/schedules", json={"request": IMAGE, "run_at": run_at,
                                                  "webhook_url": "http://169.254.169.254/"}).status_code == 400
    tick.claim_due_schedules(10, "projects/genmedia-test/topics/batches", now=datetime.now(UTC) + timedelta(minutes=6))
    with session_scope() as session:
        batch_id = session.execute(sa.text("SELECT batch_id FROM schedule_runs")).scalar_one()
        mark_succeeded(session, f"{batch_id}_0000", [])
    got = app.wait_for(1)[0].request.json()
    assert got["type"] == "batch.completed" and got["data"]["schedule_id"] == created.get_json()["id"]


def test_a_generation_interrupted_by_a_dead_function_sends_generation_failed(
    env: None, receiver: tuple[WebhookReceiver, str],
) -> None:
    from functions.scheduling import tick
    from shared.jobs import create_job
    from shared.media.capabilities import resolve
    from shared.media.request import GenerationRequest
    from shared.webhooks.deliveries import Subscription, subscribe

    app, url = receiver
    with session_scope() as session:
        create_job(session, resolve(GenerationRequest(kind="image", prompt="a fox")), owner_id="0123456789ab",
                   job_id="gen_dead", status="running", lease_seconds=0.001)
        subscribe(session, [Subscription("0123456789ab", "generation", "gen_dead", url)])
    assert tick.tick(job_name=None, schedule_time=None).interrupted == 1
    event = app.wait_for(1)[0].request.json()
    assert event["type"] == "generation.failed" and event["data"]["error"]["reason"] == "INTERRUPTED"


def test_a_sender_whose_lease_ran_out_cannot_overwrite_the_next_attempt(client: Any) -> None:
    from shared.webhooks import deliveries

    dispatch._enabled, was = False, dispatch._enabled
    try:
        job = client.post("/v1/generations", json={**IMAGE, "webhook_url": "http://127.0.0.1:9/"}).get_json()
    finally:
        dispatch._enabled = was
    with session_scope() as session:
        (slow,) = deliveries.claim(session, lease_seconds=0)  # its lease ends at once
    with session_scope() as session:
        (fast,) = deliveries.claim(session, lease_seconds=60)
        assert fast.attempts == slow.attempts + 1
        assert deliveries.record(session, [deliveries.Attempted(fast.id, fast.attempts, "delivered", 200, None)])
    with session_scope() as session:
        late = deliveries.Attempted(slow.id, slow.attempts, "retry", 500, "HTTP_500", 5.0)
        assert deliveries.record(session, [late]) == set()
    assert delivery(job["id"])["state"] == "delivered"
