"""`make run`'s local tick: its setting, and that it calls `:tick` on a real scheduling function."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from devtools.local_tick import DEFAULT_SECONDS, LocalTicker, parse_interval
from tests.e2e.conftest import wait_until
from tests.servers import serve


def make_due(url: str, schedule_id: str) -> None:
    """Move a one-off schedule's run to now (a schedule due in the past cannot be created)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE schedules SET next_run_at = now(), run_at = now() WHERE id = :i"),
                     {"i": schedule_id})
    engine.dispose()


@pytest.mark.parametrize(("raw", "seconds"), [(None, DEFAULT_SECONDS), ("", DEFAULT_SECONDS), ("2.5", 2.5), ("0", 0)])
def test_local_tick_seconds_defaults_to_ten_and_zero_turns_it_off(raw: str | None, seconds: float) -> None:
    assert parse_interval(raw) == seconds


@pytest.mark.parametrize("raw", ["ten", "-1", "99999"])
def test_a_bad_local_tick_seconds_stops_start_up_with_one_line_naming_it(raw: str) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse_interval(raw)
    assert "LOCAL_TICK_SECONDS" in str(stopped.value) and "\n" not in str(stopped.value)


def test_the_local_ticker_fires_a_one_off_schedule_with_nobody_calling_the_tick(
    db: Any, admin_key: str, api_key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    env = {"DATABASE_URL": db.url, "PUBSUB_BATCH_TOPIC": "batches", "PUBSUB_EMULATOR_HOST": "127.0.0.1:9",
           "PUBSUB_PUBLISH_TIMEOUT_SECONDS": "0.2"}
    with serve("scheduling", env, tmp=tmp_path) as served:
        run_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        created = requests.post(f"{served.url}/v1/schedules", headers={"Authorization": f"Bearer {api_key}"},
                                json={"request": {"kind": "image", "prompt": "once"}, "run_at": run_at}, timeout=30)
        assert created.status_code == 201, created.text
        make_due(db.url, created.json()["id"])  # due now, however slowly this machine served the POST
        ticker = LocalTicker(served.url, admin_key, 0.3).start()
        try:
            def fired() -> bool:
                got = requests.get(f"{served.url}/v1/schedules/{created.json()['id']}",
                                   headers={"Authorization": f"Bearer {api_key}"}, timeout=10).json()
                return bool(got["runs"])

            wait_until(fired, timeout=60, interval=0.2, what="the local tick to fire the schedule")
        finally:
            ticker.stop()
    assert ticker.ticks >= 1
    assert "local tick: ok" in capsys.readouterr().out


def test_a_failing_tick_is_reported_once_not_every_interval(capsys: pytest.CaptureFixture[str]) -> None:
    ticker = LocalTicker("http://127.0.0.1:9", "gm_x", 0.01)
    assert ticker.tick_once() is None and ticker.tick_once() is None
    assert capsys.readouterr().out.count("local tick: failed") == 1
