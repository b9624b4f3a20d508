"""`make run`'s stand-in for Cloud Scheduler: POST /v1/schedules:tick every LOCAL_TICK_SECONDS.

Without it nothing fires schedules or advances batch videos locally. It calls the tick exactly as Cloud
Scheduler would (with the development key instead of an OIDC token), from a daemon thread, and
reports only changes (first success, failures, recovery), so the terminal stays readable.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

DEFAULT_SECONDS = 10.0


def parse_interval(raw: str | None) -> float:
    """LOCAL_TICK_SECONDS: seconds between ticks (default 10); 0 turns the local tick off."""
    if raw is None or raw.strip() == "":
        return DEFAULT_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        raise SystemExit("genmedia: configuration error: LOCAL_TICK_SECONDS: must be a number of seconds") from None
    if seconds < 0 or seconds > 3600:
        raise SystemExit("genmedia: configuration error: LOCAL_TICK_SECONDS: must be between 0 and 3600")
    return seconds


class LocalTicker:
    """Ticks the scheduling function until `stop()`; `ticks` counts the calls that answered 200."""

    def __init__(self, url: str, key: str, seconds: float) -> None:
        self.url = url.rstrip("/") + "/v1/schedules:tick"
        self.seconds = seconds
        self.ticks = 0
        self._headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                         "User-Agent": "genmedia-local-tick"}
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="local-tick", daemon=True)
        self._failing: str | None = None

    def start(self) -> LocalTicker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def tick_once(self) -> dict[str, object] | None:
        """One tick; its result, or None when the function did not answer 200 (reported once)."""
        request = urllib.request.Request(self.url, data=b"{}", headers=self._headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=max(30.0, self.seconds)) as response:
                result: dict[str, object] = json.loads(response.read() or b"{}")
        except (urllib.error.URLError, OSError, ValueError) as err:
            self._report(f"{type(err).__name__}: {getattr(err, 'code', '') or getattr(err, 'reason', err)}")
            return None
        self.ticks += 1
        if self._failing is not None or self.ticks == 1:
            print("local tick: ok" + (" again" if self._failing else ""), flush=True)  # noqa: T201
        self._failing = None
        return result

    def _report(self, problem: str) -> None:
        if problem != self._failing:
            print(f"local tick: failed ({problem}); retrying every {self.seconds:g}s", flush=True)  # noqa: T201
        self._failing = problem

    def _run(self) -> None:
        # The first tick waits one interval: the servers are still starting when the thread does.
        while not self._stopped.wait(self.seconds):
            self.tick_once()
