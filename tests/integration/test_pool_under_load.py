"""40 concurrent requests through a real server on a pool of 2+1: never more than 3 connections, never a 5xx."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from tests.conftest import DatabaseHandle
from tests.servers import serve

APP = "pool_under_load"


def connections(url: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :a"),
                             {"a": APP}).scalar_one()
    engine.dispose()
    return int(count)


def test_forty_concurrent_requests_on_a_pool_of_two_plus_one(db: DatabaseHandle, api_key: str,
                                                              tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"{db.url}&application_name={APP}", "DB_POOL_SIZE": "2", "DB_MAX_OVERFLOW": "1",
           "DB_POOL_TIMEOUT": "10", "LOCAL_DATA_DIR": str(tmp_path / "data"), "LOG_LEVEL": "WARNING"}
    peak, stop = 0, threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, connections(db.url))
            time.sleep(0.005)

    with serve("generation", env, tmp=tmp_path) as served:
        watcher = threading.Thread(target=watch)
        watcher.start()

        def one(i: int) -> int:
            response = requests.post(f"{served.url}/v1/generations", timeout=60,
                                     headers={"Authorization": f"Bearer {api_key}"},
                                     json={"kind": "image", "prompt": f"load {i}"})
            return response.status_code

        try:
            with ThreadPoolExecutor(max_workers=40) as pool:
                statuses: list[Any] = list(pool.map(one, range(40)))
        finally:
            stop.set()
            watcher.join()
    assert statuses == [201] * 40
    assert 1 <= peak <= 3
