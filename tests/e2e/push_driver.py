"""Pub/Sub push at cloud scale, over the emulator: pull messages and push each to one of several batch
function processes, `concurrency` deliveries in flight at once.

The emulator's own push subscription keeps two deliveries in flight, which hides what a fleet does
to a quota: real Pub/Sub pushes as fast as Cloud Functions scales out. This driver pulls (no ack yet),
POSTs the raw push body to the next process round robin, acks on a 2xx and nacks (ack deadline 0:
redelivered at once, the harshest retry policy) on anything else or on a refused connection.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

ACK_DEADLINE_SECONDS = 60


class PushDriver:
    """Start it with `with PushDriver(...)`; `counts` has deliveries, acks and nacks."""

    def __init__(self, emulator_host: str, subscription: str, endpoints: list[str], *,
                 concurrency: int = 32) -> None:
        self._base = f"http://{emulator_host}/v1/{subscription}"
        self._subscription, self._endpoints = subscription, endpoints
        self._slots = threading.Semaphore(concurrency)
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="push")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pull_loop, daemon=True)
        self._lock = threading.Lock()
        self._next = 0
        self._local = threading.local()
        self.concurrency = concurrency
        self.counts: Counter[str] = Counter()

    def __enter__(self) -> PushDriver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _http(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _pull_loop(self) -> None:
        pulling = requests.Session()
        while not self._stop.is_set():
            free = 0
            while free < self.concurrency and self._slots.acquire(timeout=0.05 if free == 0 else 0):
                free += 1
            if free == 0:
                continue
            try:
                body = {"maxMessages": free, "returnImmediately": True}
                received = pulling.post(f"{self._base}:pull", json=body, timeout=30).json().get("receivedMessages", [])
            except requests.RequestException:
                received = []
            for _ in range(free - len(received)):
                self._slots.release()
            for message in received:
                self._pool.submit(self._deliver, message)
            if not received:
                self._stop.wait(0.02)

    def _endpoint(self) -> str:
        with self._lock:
            self._next += 1
            return self._endpoints[self._next % len(self._endpoints)]

    def _push(self, body: dict[str, Any]) -> int:
        """The HTTP status, or 0 when no answer came (a kept-alive connection the server had closed is
        tried once more on a new one, as any HTTP client would)."""
        for attempt in (1, 2):
            try:
                return self._http().post(self._endpoint(), json=body, timeout=ACK_DEADLINE_SECONDS).status_code
            except requests.ConnectionError:
                self._local.session = None
                if attempt == 2:
                    return 0
            except requests.RequestException:
                return 0
        return 0

    def _deliver(self, received: dict[str, Any]) -> None:
        try:
            body = {"message": received["message"], "subscription": self._subscription}
            status = self._push(body)
            acked = 200 <= status < 300
            with self._lock:
                self.counts["deliveries"] += 1
                self.counts["acks" if acked else "nacks" if status else "unreachable"] += 1
            if acked:
                self._http().post(f"{self._base}:acknowledge", json={"ackIds": [received["ackId"]]}, timeout=10)
            else:
                self._http().post(f"{self._base}:modifyAckDeadline",
                                  json={"ackIds": [received["ackId"]], "ackDeadlineSeconds": 0}, timeout=10)
        except requests.RequestException:
            pass  # the ack deadline passes and the emulator redelivers, as Pub/Sub would
        finally:
            self._slots.release()


def create_pull_subscription(emulator: Any, name: str, topic: str) -> str:
    """A pull subscription for the driver, with an ack deadline longer than any delivery takes."""
    body = {"topic": topic, "ackDeadlineSeconds": ACK_DEADLINE_SECONDS}
    return str(emulator._call("PUT", emulator.subscription_path(name), body)["name"])

