"""Exit codes scripts can trust, and the API's AIP-193 errors turned into lines a person can act on."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

OK = 0
API_ERROR = 1  # the API refused the request (4xx other than 429): fix it, retrying will not help
USAGE = 2  # the command line, a config file or an input file is wrong
UNAVAILABLE = 3  # 429, 5xx, network, or still not finished when --timeout ran out: try again later
JOB_FAILED = 4  # the request was accepted but the job (or a batch item) failed


class CliError(Exception):
    """A failure to report on one line (plus details) and exit with `exit_code`."""

    exit_code = USAGE

    def lines(self) -> list[str]:
        """What to print on stderr."""
        return [str(self)]


class UsageError(CliError):
    """A wrong option, a missing setting or an unreadable input file."""


class TransportError(CliError):
    """The server could not be reached, or did not answer in time."""

    exit_code = UNAVAILABLE


class WaitTimeoutError(CliError):
    """Still not finished when --timeout ran out."""

    exit_code = UNAVAILABLE


class JobFailedError(CliError):
    """The API accepted the work but it failed."""

    exit_code = JOB_FAILED


@dataclass
class ApiError(CliError):
    """A non-2xx answer: its status, and the AIP-193 error body when there is one."""

    status: int
    reason: str
    message: str
    violations: list[tuple[str, str]] = field(default_factory=list)
    retry_after: str | None = None
    request_id: str | None = None
    field_notes: dict[str, str] = field(default_factory=dict)  # field path -> where it came from

    def __post_init__(self) -> None:
        super().__init__(self.message)
        self.exit_code = UNAVAILABLE if self.status == 429 or self.status >= 500 else API_ERROR

    @classmethod
    def from_response(cls, status: int, body: bytes, headers: Any) -> ApiError:
        """Read the contract's error body; anything else (a proxy's HTML page) keeps its first line."""
        try:
            error = json.loads(body)["error"]
            details = error.get("details", [])
        except (ValueError, KeyError, TypeError, AttributeError):
            text = body.decode("utf-8", "replace").strip().splitlines()
            return cls(status, "HTTP_ERROR", text[0][:200] if text else "no error body",
                       retry_after=headers.get("Retry-After"))
        info: dict[str, Any] = next((d for d in details if str(d.get("@type", "")).endswith("ErrorInfo")), {})
        bad: dict[str, Any] = next((d for d in details if str(d.get("@type", "")).endswith("BadRequest")), {})
        request: dict[str, Any] = next((d for d in details if str(d.get("@type", "")).endswith("RequestInfo")), {})
        return cls(
            status, str(info.get("reason") or error.get("status") or "ERROR"), str(error.get("message", "")),
            violations=[(str(v.get("field", "")), str(v.get("description", "")))
                        for v in bad.get("fieldViolations", [])],
            retry_after=headers.get("Retry-After"), request_id=request.get("requestId"),
        )

    def lines(self) -> list[str]:
        """`status reason: message`, then each field violation, when to retry, and the request id."""
        out = [f"{self.status} {self.reason}: {self.message}"]
        only = len(self.violations) == 1 and self.message == "{}: {}".format(*self.violations[0])
        for name, description in self.violations:
            if only and not self.field_notes:
                break  # the message already says it
            where = self.field_notes.get(name.split(".", 1)[0])
            out.append(f"  {name}{f' ({where})' if where else ''}: {description}")
        if self.retry_after:
            out.append(f"  retry after {self.retry_after}s")
        if self.request_id:
            out.append(f"  request id: {self.request_id}")
        return out
