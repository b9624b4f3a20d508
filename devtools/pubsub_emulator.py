"""The gcloud Pub/Sub emulator: start and stop it, and the REST calls tests and benchmarks need.

Behaviour found by probing emulator 0.8.20 (gcloud 528), which the e2e tests rely on:
- a push subscription has exactly two push loops: at most two deliveries are in flight at once, each
  loop waiting for its HTTP answer (so push throughput is 2 / handler latency, whatever the function);
- a nack (non-ack status or a refused connection) is redelivered after ~1 s when the subscription has
  no retryPolicy; with one, later retries come every ~3 s whatever a smaller minimumBackoff says (a
  larger one is honoured), so the tests set none;
- ack statuses are exactly 102, 200, 201, 203 and 204 (202 is a nack there, unlike real Pub/Sub);
- a push still unanswered after ackDeadlineSeconds is redelivered while the first is in flight, and
  the HTTP connect timeout is the ack deadline (there is no read timeout);
- dead-letter policies are honoured: after maxDeliveryAttempts nacks (refused connections count) the
  message goes to the dead-letter topic with CloudPubSubDeadLetterSource* attributes; pushes carry no
  `deliveryAttempt` even then, and always carry `data` (empty string for an attributes-only message);
- topic and subscription names need 3+ characters; message ids are one counter for the whole emulator.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

PROJECT = "genmedia-e2e"
ACK_DEADLINE_SECONDS = 10
DEAD_LETTER_MAX_ATTEMPTS = 5  # Pub/Sub's minimum; production sets MAX_DELIVERY_ATTEMPTS (>= 5) here too


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmulatorUnavailable(Exception):
    """gcloud or its Pub/Sub emulator component (or Java) is missing, or the emulator did not start."""


class Emulator:
    """A running emulator, driven through its REST API."""

    def __init__(self, host: str, project: str = PROJECT) -> None:
        self.host = host
        self.project = project
        self._http = requests.Session()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self._http.request(method, f"http://{self.host}/v1/{path}", json=body, timeout=30)
        if not response.ok:
            raise AssertionError(f"emulator {method} {path}: {response.status_code} {response.text}")
        result: dict[str, Any] = response.json() if response.content else {}
        return result

    def topic_path(self, name: str) -> str:
        return f"projects/{self.project}/topics/{name}"

    def subscription_path(self, name: str) -> str:
        return f"projects/{self.project}/subscriptions/{name}"

    def create_topic(self, name: str) -> str:
        """Create a topic; returns its full path."""
        return str(self._call("PUT", self.topic_path(name))["name"])

    def create_push_subscription(self, name: str, topic: str, endpoint: str, *,
                                 dead_letter_topic: str | None = None,
                                 max_delivery_attempts: int = DEAD_LETTER_MAX_ATTEMPTS) -> str:
        """A push subscription to `endpoint`, without retryPolicy (the emulator then retries every ~1 s)."""
        body: dict[str, Any] = {"topic": topic, "pushConfig": {"pushEndpoint": endpoint},
                                "ackDeadlineSeconds": ACK_DEADLINE_SECONDS}
        if dead_letter_topic is not None:
            body["deadLetterPolicy"] = {"deadLetterTopic": dead_letter_topic,
                                        "maxDeliveryAttempts": max_delivery_attempts}
        return str(self._call("PUT", self.subscription_path(name), body)["name"])

    def create_pull_subscription(self, name: str, topic: str) -> str:
        """A pull subscription (to read the dead-letter topic)."""
        return str(self._call("PUT", self.subscription_path(name), {"topic": topic})["name"])

    def delete_subscription(self, path: str) -> None:
        """Delete a subscription, so its push loops stop calling a stopped function."""
        self._http.delete(f"http://{self.host}/v1/{path}", timeout=10)

    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None,
                *, copies: int = 1) -> list[str]:
        """Publish `copies` messages with the same data in one request; returns their message ids."""
        message: dict[str, Any] = {"data": base64.b64encode(data).decode()}
        if attributes:
            message["attributes"] = attributes
        return list(self._call("POST", f"{topic}:publish", {"messages": [message] * copies})["messageIds"])

    def pull(self, subscription: str, max_messages: int = 100) -> list[dict[str, Any]]:
        """Pull and acknowledge what is there now (returns at once when there is nothing)."""
        body = {"maxMessages": max_messages, "returnImmediately": True}
        received = self._call("POST", f"{subscription}:pull", body).get("receivedMessages", [])
        if received:
            self._call("POST", f"{subscription}:acknowledge", {"ackIds": [m["ackId"] for m in received]})
        return [m["message"] for m in received]


def missing_emulator() -> str | None:
    """Why the emulator cannot run here (gcloud, its pubsub-emulator component, Java), or None.

    Cheap (no process started), for deciding at collection time; `running_emulator` still reports a
    start that fails for any other reason.
    """
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return "gcloud is not on PATH"
    sdk_root = Path(os.path.realpath(gcloud)).parent.parent
    if not (sdk_root / "platform" / "pubsub-emulator").is_dir():
        return f"the gcloud pubsub-emulator component is not installed in {sdk_root}"
    if shutil.which("java") is None:
        return "java (needed by the emulator) is not on PATH"
    return None


def stop_group(process: subprocess.Popen[bytes], first: signal.Signals = signal.SIGTERM,
               timeout: float = 5.0) -> None:
    """Stop a process started in its own session and everything it spawned (the emulator's java)."""
    for sig in (first, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def running_emulator(data_dir: Path, project: str = PROJECT, timeout: float = 60.0,
                     port: int | None = None) -> Iterator[Emulator]:
    """`gcloud beta emulators pubsub start` on a free port for the block; EmulatorUnavailable if not."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise EmulatorUnavailable("gcloud is not on PATH")
    port = port or free_port()
    log = data_dir / "emulator.log"
    command = [gcloud, "beta", "emulators", "pubsub", "start", f"--host-port=127.0.0.1:{port}",
               f"--project={project}", f"--data-dir={data_dir}"]
    env = {**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   env=env, start_new_session=True)
    try:
        _wait_answering(process, port, log, timeout)
        yield Emulator(f"127.0.0.1:{port}", project)
    finally:
        stop_group(process)


def _wait_answering(process: subprocess.Popen[bytes], port: int, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
            raise EmulatorUnavailable(f"it exited: {lines[-1] if lines else 'no output'}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/", timeout=1).ok:
                return
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise EmulatorUnavailable(f"it did not answer within {timeout:.0f} s")
        time.sleep(0.2)
