"""One HTTP POST to an address we checked, under one deadline for the whole exchange.

Not an HTTP client library on purpose: we connect to the IP address the SSRF check approved (with the
original name as `Host` and TLS server name, and the certificate verified against that name), so a
second DNS lookup cannot send us elsewhere; redirects are never followed (a 3xx is just a failed
attempt); and the deadline covers connecting, TLS, sending and the status line and headers, so a
receiver that trickles bytes cannot hold a sender longer than the timeout. The body of the answer is
never read.
"""

from __future__ import annotations

import http.client
import io
import socket
import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from shared.webhooks.ssrf import IPAddress, Target

_default_tls: ssl.SSLContext | None = None


@dataclass(frozen=True)
class Answer:
    """What the receiver said: its status and how long it asked us to wait, if it did."""

    status: int
    retry_after: float | None


class _DeadlineReader(io.RawIOBase):
    """A socket read that never waits past the deadline, however slowly bytes arrive."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the receiver did not answer in time")
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)


class _ResponseSource:
    """What http.client.HTTPResponse reads from: our deadline-bound reader."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._reader = io.BufferedReader(_DeadlineReader(sock, deadline))

    def makefile(self, mode: str) -> io.BufferedReader:
        return self._reader  # type: ignore[return-value]


def tls_context() -> ssl.SSLContext:
    """The system's trust store, certificate and host name checked (built once)."""
    global _default_tls
    if _default_tls is None:
        _default_tls = ssl.create_default_context()
    return _default_tls


def _connect(target: Target, address: IPAddress, deadline: float, tls: ssl.SSLContext | None) -> socket.socket:
    sock = socket.create_connection((str(address), target.port), timeout=max(0.01, deadline - time.monotonic()))
    if target.scheme != "https":
        return sock
    try:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        # The name we checked, for SNI and certificate checking (an IP literal is checked as an IP).
        return (tls or tls_context()).wrap_socket(sock, server_hostname=target.host)
    except BaseException:
        sock.close()
        raise


def _request_bytes(target: Target, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {target.path} HTTP/1.1", f"Host: {target.host_header}",
             "Content-Type: application/json", f"Content-Length: {len(body)}",
             "User-Agent: genmedia-webhooks/1", "Connection: close",
             *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def post(target: Target, addresses: list[IPAddress], headers: dict[str, str], body: bytes, *,
         timeout: float, tls: ssl.SSLContext | None = None) -> Answer:
    """POST `body` to the first checked address that accepts a connection; OSError on any failure.

    TimeoutError (an OSError) when the deadline passes at any step.
    """
    deadline = time.monotonic() + timeout
    last: OSError = OSError("no address to connect to")
    for address in addresses:
        try:
            sock = _connect(target, address, deadline, tls)
            break
        except (ssl.SSLCertVerificationError, TimeoutError):
            raise  # a wrong certificate is wrong on every address; the deadline is spent
        except OSError as err:
            last = err
    else:
        raise last
    try:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        sock.sendall(_request_bytes(target, headers, body))
        response = http.client.HTTPResponse(_ResponseSource(sock, deadline))  # type: ignore[arg-type]
        try:
            response.begin()
        except http.client.HTTPException as err:
            raise OSError(f"the receiver's answer is not HTTP: {type(err).__name__}") from None
        return Answer(response.status, parse_retry_after(response.getheader("Retry-After")))
    finally:
        sock.close()


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a `Retry-After` header (delay-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))
