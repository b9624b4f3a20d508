"""The results file (written once, whole, for every way a batch ends) and cancelling generations and batches."""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from functions.scheduling.tick import tick
from shared import config
from shared.database import session_scope
from shared.results.results_file import ResultsWriteError, write_pending_results, write_results_if_finished
from shared.tables import BatchRow
from tests.conftest import mint_key
from tests.servers import make_client

ENV = {"PUBSUB_BATCH_TOPIC": "batches", "PUBSUB_EMULATOR_HOST": "127.0.0.1:9",
       "PUBSUB_PUBLISH_TIMEOUT_SECONDS": "0.2", "LOCAL_VIDEO_DELAY_SECONDS": "0",
       "VIDEO_POLL_INTERVAL_SECONDS": "0"}


@pytest.fixture
def media(db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in {**ENV, "LOCAL_DATA_DIR": str(tmp_path / "media")}.items():
        monkeypatch.setenv(name, value)
    config.get_settings.cache_clear()
    return tmp_path / "media"


@pytest.fixture
def clients(media: Path, api_key: str) -> tuple[Any, Any]:
    return make_client("generation", key=api_key), make_client("batch")


def deliver(batch_client: Any, batch_id: str, index: int) -> None:
    data = json.dumps({"batch_id": batch_id, "item_id": f"{batch_id}_{index:04d}", "request": {}}).encode()
    body = {"message": {"data": base64.b64encode(data).decode(), "messageId": f"m{index}", "attributes": {}},
            "subscription": "projects/p/subscriptions/s"}
    assert batch_client.post("/", json=body).status_code in (200, 204)


def submit(client: Any, items: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post("/v1/batches", json={"items": items})
    assert response.status_code == 202, response.get_json()
    return dict(response.get_json())


def read_results(client: Any, batch_id: str) -> list[dict[str, Any]]:
    batch = client.get(f"/v1/batches/{batch_id}").get_json()
    assert batch["results"] is not None, batch
    parts = urllib.parse.urlsplit(batch["results"]["url"])
    response = make_client("generation").get(f"{parts.path}?{parts.query}")  # no key: the link is the credential
    assert response.status_code == 200 and response.mimetype == "application/jsonl"
    return [json.loads(line) for line in response.data.decode().splitlines()]


def test_a_finished_batch_has_one_line_per_item_in_submission_order(clients: tuple[Any, Any], media: Path) -> None:
    client, batch_fn = clients
    batch = submit(client, [{"kind": "image", "prompt": f"p{i}", "custom_id": f"c{i}"} for i in range(3)]
                   + [{"kind": "image", "prompt": "no id"}])
    for index in (3, 1, 0, 2):  # finishing out of order
        assert client.get(f"/v1/batches/{batch['id']}").get_json()["results"] is None
        deliver(batch_fn, batch["id"], index)
    lines = read_results(client, batch["id"])
    assert [line["custom_id"] for line in lines] == ["c0", "c1", "c2", None]
    assert [line["id"] for line in lines] == [f"{batch['id']}_{i:04d}" for i in range(4)]
    assert all(set(line) == {"custom_id", "id", "status", "outputs", "error"} for line in lines)
    assert {line["status"] for line in lines} == {"succeeded"} and all(line["outputs"] for line in lines)
    assert (media / "results" / f"{batch['id']}.jsonl").exists()


def test_concurrent_finishers_write_the_file_exactly_once(clients: tuple[Any, Any], media: Path) -> None:
    client, _ = clients
    batch = submit(client, [{"kind": "image", "prompt": f"p{i}"} for i in range(50)])
    client.post(f"/v1/batches/{batch['id']}:cancel")  # every item final, and the file written by the cancel
    with session_scope() as session:
        session.get(BatchRow, batch["id"]).results_written_at = None  # type: ignore[union-attr]
    (media / "results" / f"{batch['id']}.jsonl").unlink()
    barrier, wrote = threading.Barrier(12), []

    def finisher() -> None:
        barrier.wait()
        wrote.append(write_results_if_finished(batch["id"]))

    threads = [threading.Thread(target=finisher) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrote.count(True) == 1
    assert len(read_results(client, batch["id"])) == 50
    assert not list((media / "results").glob(".tmp-*"))


def test_a_write_that_fails_half_way_is_retried_never_left_marked(clients: tuple[Any, Any], media: Path) -> None:
    client, _ = clients
    batch = submit(client, [{"kind": "image", "prompt": "a", "custom_id": "a"}])
    media.mkdir(parents=True, exist_ok=True)
    (media / "results").write_bytes(b"")  # where the folder should be: every write fails, as on a storage outage
    client.post(f"/v1/batches/{batch['id']}:cancel")  # the cancel's own write fails and is logged
    with pytest.raises(ResultsWriteError):
        write_results_if_finished(batch["id"])
    assert client.get(f"/v1/batches/{batch['id']}").get_json()["results"] is None
    with session_scope() as session:
        row = session.get(BatchRow, batch["id"])
        assert row is not None and row.results_written_at is None and row.results_lease_until is None
    (media / "results").unlink()
    assert write_pending_results() == 1  # the tick's sweep
    assert [line["custom_id"] for line in read_results(client, batch["id"])] == ["a"]


def test_a_file_left_by_a_writer_that_died_before_marking_is_taken_as_written(clients: tuple[Any, Any],
                                                                               media: Path) -> None:
    client, _ = clients
    batch = submit(client, [{"kind": "image", "prompt": "a"}])
    client.post(f"/v1/batches/{batch['id']}:cancel")
    path = media / "results" / f"{batch['id']}.jsonl"
    before = path.read_bytes()
    with session_scope() as session:
        session.get(BatchRow, batch["id"]).results_written_at = None  # type: ignore[union-attr]
    assert write_results_if_finished(batch["id"]) is True
    assert path.read_bytes() == before


def test_cancelling_a_fresh_batch_cancels_every_item_and_writes_its_file(clients: tuple[Any, Any]) -> None:
    client, batch_fn = clients
    batch = submit(client, [{"kind": "image", "prompt": "a", "custom_id": "x"}, {"kind": "video", "prompt": "b"}])
    cancelled = client.post(f"/v1/batches/{batch['id']}:cancel")
    assert cancelled.status_code == 200
    body = cancelled.get_json()
    assert body["status"] == "cancelled" and body["counts"]["cancelled"] == 2 and body["results"]["url"]
    deliver(batch_fn, batch["id"], 0)  # a delivery of a cancelled item is acked with no effect
    job = client.get(f"/v1/generations/{batch['id']}_0000").get_json()
    assert job["status"] == "cancelled" and job["outputs"] == [] and job["error"]["reason"] == "CANCELLED"
    assert [line["status"] for line in read_results(client, batch["id"])] == ["cancelled", "cancelled"]
    assert client.post(f"/v1/batches/{batch['id']}:cancel").get_json()["counts"]["cancelled"] == 2


def test_cancelling_a_running_video_stops_its_polling(clients: tuple[Any, Any], admin_key: str) -> None:
    client, _ = clients
    job = client.post("/v1/generations", json={"kind": "video", "prompt": "waves", "duration_seconds": 4})
    assert job.status_code == 202 and job.get_json()["status"] == "running"
    cancelled = client.post(f"/v1/generations/{job.get_json()['id']}:cancel").get_json()
    assert cancelled["status"] == "cancelled"
    assert tick(job_name=None, schedule_time=None).videos_polled == 0
    assert client.get(f"/v1/generations/{cancelled['id']}").get_json()["status"] == "cancelled"


def test_a_batch_video_cancelled_mid_run_and_the_rest_finished(clients: tuple[Any, Any]) -> None:
    client, batch_fn = clients
    batch = submit(client, [{"kind": "image", "prompt": "a"}, {"kind": "video", "prompt": "b", "duration_seconds": 4}])
    deliver(batch_fn, batch["id"], 0)
    deliver(batch_fn, batch["id"], 1)  # the video's operation starts
    assert client.get(f"/v1/batches/{batch['id']}").get_json()["counts"]["running"] == 1
    after = client.post(f"/v1/batches/{batch['id']}:cancel").get_json()
    assert after["counts"] == {"queued": 0, "running": 0, "succeeded": 1, "failed": 0, "cancelled": 1}
    assert after["status"] == "cancelled"
    assert [line["status"] for line in read_results(client, batch["id"])] == ["succeeded", "cancelled"]


def test_a_batch_video_finished_by_the_tick_gets_its_file_from_the_tick(clients: tuple[Any, Any]) -> None:
    client, batch_fn = clients
    batch = submit(client, [{"kind": "video", "prompt": "b", "duration_seconds": 4, "custom_id": "v"}])
    deliver(batch_fn, batch["id"], 0)
    assert client.get(f"/v1/batches/{batch['id']}").get_json()["results"] is None
    result = tick(job_name=None, schedule_time=None)
    assert result.videos_polled == 1 and result.results_written == 1
    lines = read_results(client, batch["id"])
    assert lines[0]["custom_id"] == "v" and lines[0]["status"] == "succeeded"


def test_cancelling_a_finished_job_changes_nothing_and_another_owners_is_404(clients: tuple[Any, Any]) -> None:
    client, _ = clients
    done = client.post("/v1/generations", json={"kind": "image", "prompt": "a"}).get_json()
    again = client.post(f"/v1/generations/{done['id']}:cancel").get_json()
    assert again["status"] == "succeeded" and again["outputs"]
    other = make_client("generation", key=mint_key("someone-else"))
    assert other.post(f"/v1/generations/{done['id']}:cancel").status_code == 404
    assert other.post("/v1/batches/bat_nope:cancel").status_code == 404
