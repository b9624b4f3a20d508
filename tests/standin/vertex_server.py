"""A stand-in for the Vertex AI REST API: the four methods genmedia calls, with failure scenarios.

Routes: POST /v1/projects/{p}/locations/{l}/publishers/google/models/{model}:{method} for method in
predict (imagen-*), generateContent (gemini-*), predictLongRunning and fetchPredictOperation (veo-*).

Choosing a scenario, first match wins:
1. queued: `standin.queue("quota", times=2, method="predict")` or POST /_standin/scenarios
   {"scenario": "quota", "times": 2, "method": "predict"};
2. a tag in the prompt: "[standin:rai-filtered]", "[standin:quota-then-success]" (fails once, then
   succeeds; "[standin:unavailable-then-success:2]" fails twice); a Veo operation keeps the scenario
   it was started with for its polls;
3. "success".

Scenarios: success, success-bytes, success-gcs, quota (429), quota-then-success, unavailable (503),
unavailable-then-success, internal-error (500), rejected (400 INVALID_ARGUMENT), rai-filtered,
prompt-blocked (Gemini), empty (done/answered with no media), slow (answers after `slow_seconds`),
not-done-then-done (Veo: first poll running, then done), operation-error, operation-quota,
video-bytes (Veo answers bytes instead of gcsUri).

Input pictures are checked as Vertex does (tests/standin/vertex_shapes.py): Veo's `image`, `lastFrame`
and `referenceImages[].image` must be `{gcsUri, mimeType}` (or `{bytesBase64Encoded, mimeType}`),
Gemini parts `text`, `inlineData` or `fileData {fileUri, mimeType}`; anything else is a 400.

Quota enforcement, as Vertex AI does per project and base model: `standin.set_quota(model, calls,
seconds)` (or POST /_standin/config {"quotas": {model: [calls, seconds]}}) answers 429 to every
generation call (not operation polls) past `calls` in a fixed window of `seconds`; windows start when
the stand-in does, so their edges fall anywhere against the caller's. `refusals` counts those 429s.

Every request is recorded (`requests`, GET /_standin/requests) for tests to assert path and body.
Standalone: `python -m tests.standin.vertex_server --port 8090`.
"""

from __future__ import annotations

import argparse
import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from tests.standin import vertex_responses as responses
from tests.standin import vertex_shapes as shapes
from tests.standin.http_base import BackgroundServer, Incoming, Reply

_ROUTE = re.compile(
    r"^/(?P<version>v1|v1beta1)/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/publishers/google/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$"
)
_TAG = re.compile(r"\[standin:(?P<name>[a-z-]+)(?::(?P<times>\d+))?\]")
_FAMILY = {"predict": "imagen-", "generateContent": "gemini-", "predictLongRunning": "veo-",
           "fetchPredictOperation": "veo-"}
# Scenarios that answer the HTTP call itself with a failure, whatever the method.
_CALL_FAILURES = {"quota", "unavailable", "internal-error", "rejected", "slow"}


@dataclass(frozen=True)
class Recorded:
    """One request the stand-in received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float = 0.0  # time.monotonic() when it arrived

    @property
    def rpc(self) -> str:
        """The Vertex method, e.g. "predict" or "fetchPredictOperation"."""
        return self.path.rsplit(":", 1)[-1]


@dataclass
class _Operation:
    scenario: str
    model: str
    count: int
    storage: str | None
    pending_polls: int
    polls: int = 0


class VertexStandIn:
    """The Vertex AI stand-in's state and logic, independent of HTTP (see module docstring)."""

    def __init__(self, *, slow_seconds: float = 5.0) -> None:
        self.slow_seconds = slow_seconds
        self.url = ""  # set by start()
        self.retry_after: float | None = None  # sent with 429s when set
        self.requests: list[Recorded] = []
        self.operations: dict[str, _Operation] = {}
        self._queue: deque[tuple[str, str | None]] = deque()
        self._hits: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self.quotas: dict[str, tuple[int, float]] = {}
        self.refusals: Counter[str] = Counter()
        self._window_calls: Counter[tuple[str, int]] = Counter()
        self._epoch = time.monotonic()

    # --- control --------------------------------------------------------------------------------

    def queue(self, scenario: str, *, times: int = 1, method: str | None = None) -> None:
        """Answer the next `times` calls (of `method`, or any) with `scenario`."""
        with self._lock:
            self._queue.extend([(scenario, method)] * times)

    def set_quota(self, model: str, calls: int, seconds: float) -> None:
        """Admit at most `calls` generation calls of `model` per fixed window of `seconds` (0 calls: no limit)."""
        with self._lock:
            if calls:
                self.quotas[model] = (calls, seconds)
            else:
                self.quotas.pop(model, None)

    def _over_quota(self, model: str, method: str) -> bool:
        with self._lock:
            quota = self.quotas.get(model)
            if quota is None or method == "fetchPredictOperation":
                return False
            calls, seconds = quota
            window = (model, int((time.monotonic() - self._epoch) // seconds))
            if self._window_calls[window] >= calls:
                self.refusals[model] += 1
                return True
            self._window_calls[window] += 1
            return False

    def reset_queue(self) -> None:
        """Drop the queued scenarios (keep the log and the operations)."""
        with self._lock:
            self._queue.clear()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.operations.clear()
            self._queue.clear()
            self._hits.clear()
            self.retry_after = None
            self.quotas.clear()
            self.refusals.clear()
            self._window_calls.clear()

    def calls(self, rpc: str | None = None) -> list[Recorded]:
        """Recorded Vertex calls, optionally only those of one method ("predict", ...)."""
        with self._lock:
            return [r for r in self.requests if r.path.startswith("/v1") and (rpc is None or r.rpc == rpc)]

    # --- protocol -------------------------------------------------------------------------------

    def handle(self, request: Incoming) -> Reply:
        if request.path.startswith("/_standin/"):
            return self._control(request)
        try:
            body = request.json() or {}
        except ValueError:
            return responses.error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        with self._lock:
            self.requests.append(Recorded(request.method, request.path, request.headers, body, time.monotonic()))
        route = _ROUTE.match(request.path)
        if request.method != "POST" or route is None:
            return responses.error(404, "NOT_FOUND", f"The requested URL {request.path} was not found.")
        if not request.headers.get("authorization", "").startswith("Bearer "):
            message = "Request is missing required authentication credential."
            return responses.error(401, "UNAUTHENTICATED", message)
        model, method = route["model"], route["method"]
        if method not in _FAMILY or not model.startswith(_FAMILY[method]):
            return responses.error(404, "NOT_FOUND", f"Publisher Model `{model}` was not found for {method}.")
        problem = shapes.problem(method, body)
        if problem is not None:
            return responses.error(400, "INVALID_ARGUMENT", problem)
        if self._over_quota(model, method):
            return responses.quota(model, self.retry_after)
        return self._answer(method, route.groupdict(), body)

    def _answer(self, method: str, route: dict[str, str], body: dict[str, Any]) -> Reply:
        scenario = self._scenario(method, body)
        if scenario in _CALL_FAILURES:
            failure = self._fail(scenario, route["model"])
            if failure is not None:
                return failure
            scenario = "success"  # slow: it answers, just too late
        if method == "predict":
            return responses.predict(scenario, body)
        if method == "generateContent":
            return responses.generate_content(scenario, route["model"])
        if method == "predictLongRunning":
            return self._start(scenario, route, body)
        return self._poll(body.get("operationName", ""))

    def _scenario(self, method: str, body: dict[str, Any]) -> str:
        with self._lock:
            for i, (scenario, only) in enumerate(self._queue):
                if only is None or only == method:
                    del self._queue[i]
                    return scenario
            if method == "fetchPredictOperation":
                return "success"  # the operation's own scenario decides its outcome
            match = _TAG.search(_prompt(body))
            if match is None:
                return "success"
            name = match["name"]
            if not name.endswith("-then-success"):
                return name
            # Counted per prompt, so parallel tests with their own prompts do not disturb each other.
            key = (name, _prompt(body))
            self._hits[key] += 1
            failing = self._hits[key] <= int(match["times"] or 1)
            return name.removesuffix("-then-success") if failing else "success"

    def _fail(self, scenario: str, model: str) -> Reply | None:
        if scenario == "quota":
            return responses.quota(model, self.retry_after)
        if scenario == "unavailable":
            return responses.error(503, "UNAVAILABLE", "The service is currently unavailable.")
        if scenario == "internal-error":
            return responses.error(500, "INTERNAL", "Internal error encountered.")
        if scenario == "rejected":
            return responses.error(400, "INVALID_ARGUMENT", responses.REJECTED_MESSAGE)
        time.sleep(self.slow_seconds)
        return None

    def _start(self, scenario: str, route: dict[str, str], body: dict[str, Any]) -> Reply:
        params = body.get("parameters") or {}
        name = responses.operation_name(route["project"], route["location"], route["model"])
        match = _TAG.search(_prompt(body))
        pending = 0
        if scenario == "not-done-then-done":
            pending = int(match["times"]) if match and match["times"] else 1
        with self._lock:
            self.operations[name] = _Operation(scenario, route["model"], int(params.get("sampleCount") or 1),
                                               params.get("storageUri"), pending)
        return Reply.json(200, {"name": name})

    def _poll(self, name: str) -> Reply:
        with self._lock:
            op = self.operations.get(name)
            if op is None:
                return responses.error(404, "NOT_FOUND", "Operation not found.")
            op.polls += 1
            done = op.polls > op.pending_polls
        return responses.operation(name, op.scenario, done=done, count=op.count, storage=op.storage)

    def _control(self, request: Incoming) -> Reply:
        payload = request.json() if request.method == "POST" else None
        if request.path == "/_standin/scenarios" and isinstance(payload, dict):
            times = int(payload.get("times", 1))
            self.queue(str(payload["scenario"]), times=times, method=payload.get("method"))
            return Reply.json(200, {"queued": payload["scenario"]})
        if request.path == "/_standin/reset":
            self.reset()
            return Reply.json(200, {"reset": True})
        if request.path == "/_standin/config" and isinstance(payload, dict):
            self.slow_seconds = float(payload.get("slow_seconds", self.slow_seconds))
            self.retry_after = payload.get("retry_after", self.retry_after)
            for model, (calls, seconds) in (payload.get("quotas") or {}).items():
                self.set_quota(str(model), int(calls), float(seconds))
            return Reply.json(200, {"slow_seconds": self.slow_seconds, "retry_after": self.retry_after})
        if request.path == "/_standin/requests":
            return Reply.json(200, [r.__dict__ for r in self.calls()])
        return responses.error(404, "NOT_FOUND", "unknown control endpoint")


def _prompt(body: dict[str, Any]) -> str:
    """The prompt text of a predict/predictLongRunning instance or a generateContent body."""
    instances = body.get("instances") or [{}]
    if isinstance(instances[0], dict) and instances[0].get("prompt"):
        return str(instances[0]["prompt"])
    texts = [p.get("text", "") for c in body.get("contents") or [] for p in c.get("parts") or []]
    return " ".join(texts)


def start(port: int = 0, host: str = "127.0.0.1", **options: Any) -> tuple[VertexStandIn, BackgroundServer]:
    """A running stand-in and its server (stop it with `server.stop()`)."""
    standin = VertexStandIn(**options)
    server = BackgroundServer(standin, host, port).start()
    standin.url = server.url
    return standin, server


def main() -> None:
    parser = argparse.ArgumentParser(description="Vertex AI REST stand-in for genmedia")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--slow-seconds", type=float, default=5.0)
    args = parser.parse_args()
    _, server = start(args.port, args.host, slow_seconds=args.slow_seconds)
    print(f"Vertex AI stand-in on {server.url}: set VERTEX_BASE_URL to it", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
