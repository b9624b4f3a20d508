"""A real webhook receiver on 127.0.0.1: records every POST and answers as a test scripts it.

`replies` is consumed in order, one per request (then `default` forever); a reply may hang (`delay`)
before answering, which is how a receiver that times out is made.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.standin.http_base import BackgroundServer, Incoming, Reply


@dataclass
class Scripted:
    """One answer: its status, headers, and how long to wait before sending it."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    """One POST as the receiver saw it, and when (time.monotonic())."""

    request: Incoming
    at: float

    @property
    def webhook_id(self) -> str:
        return self.request.headers["webhook-id"]


class WebhookReceiver:
    """The app: records, then answers with the next scripted reply."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.replies: list[Scripted] = []
        self.default = Scripted()
        self._arrived = threading.Condition()

    def handle(self, request: Incoming) -> Reply:
        with self._arrived:
            self.received.append(Received(request, time.monotonic()))
            reply = self.replies.pop(0) if self.replies else self.default
            self._arrived.notify_all()
        if reply.delay:
            time.sleep(reply.delay)
        return Reply(reply.status, b'{"ok": true}', dict(reply.headers))

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """At least `count` requests, waiting up to `timeout`; whatever arrived by then."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.received) < count and time.monotonic() < deadline:
                self._arrived.wait(max(0.01, deadline - time.monotonic()))
            return list(self.received)


@contextmanager
def running_receiver() -> Iterator[tuple[WebhookReceiver, str]]:
    """A receiver and its URL (`http://127.0.0.1:PORT`), stopped afterwards."""
    app = WebhookReceiver()
    server = BackgroundServer(app).start()
    try:
        yield app, server.url
    finally:
        server.stop()
