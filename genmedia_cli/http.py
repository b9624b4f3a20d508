"""A small JSON client over urllib: bearer auth, Idempotency-Key, and bounded retries of what is safe to retry.

Only stdlib, so the installed command adds no runtime dependency. GET and DELETE are retried after a
429, a 503 or a network failure (honouring `Retry-After`, capped); a POST only when it carries an
Idempotency-Key, which makes a retry return the same resource instead of creating a second one.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

from genmedia_cli import __version__
from genmedia_cli.errors import ApiError, TransportError

RETRY_STATUSES = (429, 502, 503, 504)
MAX_RETRY_WAIT = 10.0  # per retry: a person is waiting, and --retries bounds how many


class Client:
    """One base URL and API key; `call` returns the decoded JSON body (None for 204)."""

    def __init__(self, base_url: str, api_key: str | None, *, retries: int = 3, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.retries = retries
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None, *, query: dict[str, Any] | None = None,
             idempotency_key: str | None = None) -> Any:
        """Send one request (retried when safe); ApiError for a non-2xx, TransportError when unreachable."""
        url = self.base_url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        headers = {"Accept": "application/json", "User-Agent": f"genmedia-cli/{__version__}",
                   "X-Request-Id": f"cli-{uuid.uuid4().hex}"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        retry_safe = method in ("GET", "DELETE") or idempotency_key is not None
        attempt = 0
        while True:
            request = urllib.request.Request(url, data=data, headers=headers, method=method)
            try:
                return self._send(request)
            except (ApiError, TransportError) as err:
                status = err.status if isinstance(err, ApiError) else None
                if not retry_safe or attempt >= self.retries or (status is not None and status not in RETRY_STATUSES):
                    raise
                attempt += 1
                delay = _delay(err.retry_after if isinstance(err, ApiError) else None, attempt)
                what = f"{status} {err.reason}" if isinstance(err, ApiError) else "no answer"
                sys.stderr.write(f"genmedia: {what}; retry {attempt} of {self.retries} in {delay:g}s\n")
                time.sleep(delay)

    def _send(self, request: urllib.request.Request) -> Any:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            raise ApiError.from_response(err.code, err.read(), err.headers) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise TransportError(f"cannot reach {self.base_url}: {reason}") from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise TransportError(f"{self.base_url} answered something that is not JSON") from None


def _delay(retry_after: str | None, attempt: int) -> float:
    """`Retry-After` seconds when the server gave them, else exponential backoff; never over MAX_RETRY_WAIT."""
    try:
        seconds = float(retry_after) if retry_after else 0.5 * 2 ** (attempt - 1)
    except ValueError:
        seconds = 1.0
    return max(0.0, min(seconds, MAX_RETRY_WAIT))


def new_idempotency_key() -> str:
    """A fresh key for one create: retries of this invocation reuse it, a new invocation gets another."""
    return f"cli-{uuid.uuid4().hex}"
