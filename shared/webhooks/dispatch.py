"""The first attempt right after commit, off the request's thread, and retries due within seconds.

One background thread per process (started on first use, again after a fork) takes the ids of
deliveries that a commit made due and sends them, so a webhook arrives milliseconds after its job
finishes and the request that finished it never waits for a receiver. Nothing here is needed for
delivery to happen: the rows are committed before the thread hears of them, and the scheduling tick
sends whatever is due (a crash, a frozen instance, a retry minutes away). So the thread holds no
delivery while it waits; it only remembers retries due within QUICK_RETRY_SECONDS (the 5 s one), to
send them on time rather than at the next tick.

Light on purpose: importing it costs nothing at cold start; the sender loads on first use.
"""

from __future__ import annotations

import heapq
import logging
import os
import queue
import threading
import time

QUICK_RETRY_SECONDS = 30.0
_log = logging.getLogger("genmedia.webhooks")
_enabled = False
_queue: queue.SimpleQueue[list[str]] = queue.SimpleQueue()
_thread: threading.Thread | None = None
_owner_pid = 0
_lock = threading.Lock()
_idle = threading.Condition()
_outstanding = 0
_epoch = 0  # retries remembered before `forget_retries()` are dropped


def enable() -> None:
    """Send due deliveries from this process right after commit (each function calls it at start-up)."""
    global _enabled
    _enabled = True


def enabled() -> bool:
    """Whether commits in this process hand their deliveries to the dispatcher."""
    return _enabled


def kick(ids: list[str]) -> None:
    """Send these deliveries soon, on the dispatcher's thread."""
    global _outstanding
    if not ids:
        return
    _ensure_thread()
    with _idle:
        _outstanding += 1
    _queue.put(ids)


def _ensure_thread() -> None:
    global _thread, _owner_pid, _queue
    if _thread is not None and _owner_pid == os.getpid() and _thread.is_alive():
        return
    with _lock:
        if _thread is None or _owner_pid != os.getpid() or not _thread.is_alive():
            if _owner_pid != os.getpid():
                _queue = queue.SimpleQueue()  # a forked child must not share its parent's queue
            _owner_pid = os.getpid()
            _thread = threading.Thread(target=_run, name="genmedia-webhooks", daemon=True)
            _thread.start()


def _next_ids(retries: list[tuple[float, str]]) -> tuple[list[str], int]:
    """(ids kicked since the last round plus retries now due, kicks taken); waits for something."""
    timeout = max(0.0, retries[0][0] - time.monotonic()) if retries else None
    ids: list[str] = []
    kicks = 0
    try:
        ids.extend(_queue.get(timeout=timeout))
        kicks += 1
        while True:
            ids.extend(_queue.get_nowait())
            kicks += 1
    except queue.Empty:
        pass
    while retries and retries[0][0] <= time.monotonic():
        ids.append(heapq.heappop(retries)[1])
    return ids, kicks


def _run() -> None:
    global _outstanding
    from shared.webhooks.sender import deliver

    retries: list[tuple[float, str]] = []
    epoch = _epoch
    while True:
        ids, kicks = _next_ids(retries)
        if epoch != _epoch:
            retries.clear()
            epoch = _epoch
        try:
            for result in deliver(list(dict.fromkeys(ids))) if ids else []:
                if result.outcome == "retry" and result.delay is not None and result.delay <= QUICK_RETRY_SECONDS:
                    heapq.heappush(retries, (time.monotonic() + result.delay, result.id))
        except Exception as err:  # noqa: BLE001 - the rows stay due; the tick sends them
            _log.warning("webhook dispatch failed, the tick will retry: %s", type(err).__name__)
        with _idle:
            _outstanding = max(0, _outstanding - kicks)
            if _outstanding == 0:
                _idle.notify_all()


def wait_idle(timeout: float = 30.0) -> bool:
    """Wait until every kicked delivery has had its attempt (tests, benchmarks); False on timeout."""
    deadline = time.monotonic() + timeout
    with _idle:
        while _outstanding > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            _idle.wait(remaining)
    return True


def forget_retries() -> None:
    """Drop the retries this process remembers (tests: the next test has other tables)."""
    global _epoch
    _epoch += 1
