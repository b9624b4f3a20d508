"""Structured logging: one JSON object per line with Cloud Logging's fields, written once, never raising."""

from __future__ import annotations

import datetime
import io
import json
import logging
import math
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import context
from shared import logging as shared_logging
from shared.config import Settings
from shared.logging import (
    LABELS,
    MAX_FIELD_CHARS,
    MAX_LINE_CHARS,
    SOURCE_LOCATION,
    SPAN_ID,
    TRACE,
    TRACE_SAMPLED,
    JsonFormatter,
    capture_logs,
    configure_logging,
    get_logger,
)
from shared.masking import MASK
from shared.trace import trace_from_headers

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "test-project"
REQUIRED = ("severity", "message", "time", SOURCE_LOCATION, "logger")
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
GITHUB_TOKEN = "ghp_" + "wWPw5k4aXcaT4fNP0UcnZwJUVFk6LO0pINUx"  # detect-secrets fixture, split on purpose
log = get_logger("genmedia.test")


@pytest.fixture(autouse=True)
def _restore_root_logger(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test leaves the root logger (handlers, level) and our formatter as it found them."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    monkeypatch.setattr(shared_logging, "_formatter", None)
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def settings_for_test(**overrides: Any) -> Settings:
    """Logging settings alone: the other settings' validation rules are not what these tests test."""
    return Settings.model_construct(**{"google_cloud_project": PROJECT, "log_level": "DEBUG", **overrides})


def configure(stream: io.StringIO | None = None, **overrides: Any) -> io.StringIO:
    """Configure logging for a test and return its stdout."""
    stream = stream if stream is not None else io.StringIO()
    configure_logging(settings_for_test(**overrides), stream=stream)
    return stream


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every line written, each parsed: the test fails if one is not a single JSON object."""
    text = stream.getvalue()
    assert text.endswith("\n")
    parsed = [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(line, dict) for line in parsed)
    return parsed


# --- every line -----------------------------------------------------------------------------------------


def test_every_line_is_one_json_object_with_the_required_fields() -> None:
    out = configure()
    log.debug("debug")
    log.info("info %s", "arg")
    log.warning("warning")
    log.error("error")
    log.critical("critical")
    logging.getLogger("urllib3.connectionpool").warning("library line")
    parsed = lines(out)
    assert [line["severity"] for line in parsed] == [
        "DEBUG",
        "INFO",
        "WARNING",
        "ERROR",
        "CRITICAL",
        "WARNING",
    ]
    for line in parsed:
        assert all(field in line for field in REQUIRED)
        assert RFC3339_UTC.match(line["time"])
        written = datetime.datetime.strptime(line["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.UTC
        )
        assert abs((datetime.datetime.now(datetime.UTC) - written).total_seconds()) < 60
    assert parsed[1]["message"] == "info arg"
    assert parsed[5]["logger"] == "urllib3.connectionpool"


def test_source_location_points_at_the_caller() -> None:
    out = configure()
    log.info("where am I")
    location = lines(out)[0][SOURCE_LOCATION]
    assert location == {
        "file": __file__,
        "line": location["line"],
        "function": "test_source_location_points_at_the_caller",
    }
    assert isinstance(location["line"], int) and location["line"] > 0


def test_request_context_is_on_every_line_of_the_request() -> None:
    out = configure()
    with context.scope(request_id="req-1234abcd", user_id="user-7", execution_id="exec-9"):
        log.info("first")
        logging.getLogger("urllib3.connectionpool").warning("library line in the request")
    log.info("after the request")
    inside, library, after = lines(out)
    for line in (inside, library):
        assert (line["request_id"], line["user_id"], line["execution_id"]) == (
            "req-1234abcd",
            "user-7",
            "exec-9",
        )
        assert line[LABELS] == {"execution_id": "exec-9"}
    assert "request_id" not in after and "execution_id" not in after


def test_inbound_trace_is_rendered_for_cloud_logging() -> None:
    out = configure()
    with context.scope(trace_id=TRACE_ID, span_id="b7ad6b7169203331", trace_sampled=True):
        log.info("traced")
    line = lines(out)[0]
    assert line[TRACE] == f"projects/{PROJECT}/traces/{TRACE_ID}"
    assert line[SPAN_ID] == "b7ad6b7169203331"
    assert line[TRACE_SAMPLED] is True


def test_no_trace_fields_without_an_inbound_trace() -> None:
    out = configure()
    log.info("untraced")
    assert not {TRACE, SPAN_ID, TRACE_SAMPLED} & set(lines(out)[0])


def test_extra_fields_are_top_level_and_http_request_keeps_its_shape() -> None:
    out = configure()
    http_request = {
        "requestMethod": "POST",
        "requestUrl": "https://example.test/v1/generations",
        "status": 202,
        "latency": "0.012s",
        "userAgent": "curl/8.5.0",
        "remoteIp": "203.0.113.7",
    }
    log.info("POST /v1/generations 202", extra={"httpRequest": http_request, "job_id": "j-1", "attempt": 2})
    line = lines(out)[0]
    assert line["httpRequest"] == http_request
    assert (line["job_id"], line["attempt"]) == ("j-1", 2)


def test_an_extra_named_like_a_core_field_does_not_replace_it() -> None:
    out = configure()
    log.info("real message", extra={"severity": "fake", "time": "yesterday", "stack_trace": "none"})
    line = lines(out)[0]
    assert (line["severity"], line["message"]) == ("INFO", "real message")
    assert (line["extra_severity"], line["extra_time"], line["extra_stack_trace"]) == (
        "fake",
        "yesterday",
        "none",
    )


def test_unexpected_exception_logs_at_error_with_its_traceback_masked() -> None:
    out = configure()
    try:
        raise ValueError(f"upstream rejected token {GITHUB_TOKEN}")
    except ValueError:
        log.exception("unexpected failure")
    line = lines(out)[0]
    assert line["severity"] == "ERROR"
    assert line["stack_trace"].startswith("Traceback (most recent call last):")
    assert "ValueError: upstream rejected token [REDACTED]" in line["stack_trace"]
    assert GITHUB_TOKEN not in out.getvalue()


def test_sensitive_extra_keys_are_masked_in_the_line() -> None:
    out = configure()
    log.info(
        "login", extra={"password": "hunter2", "headers": {"Authorization": "Bearer abc", "Accept": "*/*"}}
    )
    line = lines(out)[0]
    assert line["password"] == MASK
    assert line["headers"] == {"Authorization": MASK, "Accept": "*/*"}


# --- configuration --------------------------------------------------------------------------------------


def test_level_comes_from_settings() -> None:
    out = io.StringIO()
    configure_logging(settings_for_test(log_level="WARNING"), stream=out)
    log.info("hidden")
    log.warning("shown")
    assert [line["message"] for line in lines(out)] == ["shown"]


def test_configuring_twice_never_duplicates_a_line() -> None:
    first = configure()
    second = configure()
    log.info("once")
    assert first.getvalue() == ""
    assert [line["message"] for line in lines(second)] == ["once"]


def test_plain_console_handlers_are_replaced_so_nothing_prints_twice() -> None:
    plain = io.StringIO()
    logging.getLogger().addHandler(logging.StreamHandler(plain))  # what basicConfig/functions-framework add
    out = configure()
    log.warning("once")
    assert plain.getvalue() == ""
    assert len(lines(out)) == 1


def test_console_follows_sys_stdout_when_no_stream_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(settings_for_test(log_level="INFO"))
    log.info("to stdout")
    assert json.loads(capsys.readouterr().out)["message"] == "to stdout"


def test_functions_framework_stdout_wrapper_is_bypassed(monkeypatch: pytest.MonkeyPatch) -> None:
    from functions_framework.execution_id import LoggingHandlerAddExecutionId

    real = io.StringIO()
    monkeypatch.setattr(sys, "stdout", LoggingHandlerAddExecutionId(real))  # type: ignore[no-untyped-call]
    configure_logging(settings_for_test(log_level="INFO"))
    with context.scope(execution_id="exec-1"):
        log.info("written once, as rendered")
    assert real.getvalue().count("\n") == 1
    assert json.loads(real.getvalue())["execution_id"] == "exec-1"
    assert '"message":"written once, as rendered"' in real.getvalue()  # our compact form, not re-dumped


FUNCTION_SOURCE = """
import logging

import functions_framework

from shared import context
from shared.config import Settings
from shared.logging import configure_logging
from shared.trace import trace_from_headers

configure_logging(Settings.model_construct(google_cloud_project="ff-project"))
log = logging.getLogger("genmedia.ff")


@functions_framework.http
def handler(request):
    context.clear()
    trace = trace_from_headers(request.headers)
    context.bind(request_id="req-ff-1", execution_id=request.headers.get("Function-Execution-Id"),
                 trace_id=trace.trace_id, span_id=trace.span_id, trace_sampled=trace.sampled)
    log.info("inside the request")
    logging.getLogger("some.library").warning("library line")
    return "ok"
"""
RUNNER = """
import sys
import functions_framework

client = functions_framework.create_app("handler", sys.argv[1]).test_client()
response = client.get("/", headers={"Function-Execution-Id": "exec-42",
                                    "X-Cloud-Trace-Context": "0af7651916cd43dd8448eb211c80319c/12345;o=1"})
assert response.status_code == 200, response.data
"""


def test_log_execution_id_on_lines_are_written_once_as_json_with_the_execution_id(tmp_path: Path) -> None:
    source = tmp_path / "main.py"
    source.write_text(FUNCTION_SOURCE)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "LOG_EXECUTION_ID": "true"}
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(source)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    parsed = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["message"] for line in parsed] == ["inside the request", "library line"]
    for line in parsed:
        assert line["execution_id"] == "exec-42"
        assert line[LABELS] == {"execution_id": "exec-42"}
        assert line[SPAN_ID] == f"{12345:016x}"  # ours, not functions-framework's decimal one
        assert line[TRACE] == f"projects/ff-project/traces/{TRACE_ID}"


def test_importing_shared_logging_does_not_import_google_cloud_logging() -> None:
    code = (
        "import sys, shared.logging; assert 'google.cloud.logging' not in sys.modules; "
        "assert 'google.cloud.logging_v2' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


# --- parity with google-cloud-logging --------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-01"},
        {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"},
        {"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/1;o=1"},
        {"X-Cloud-Trace-Context": f"{TRACE_ID}/18446744073709551615;o=0"},
    ],
    ids=["traceparent-sampled", "traceparent-unsampled", "cloud-trace-context", "cloud-trace-max-span"],
)
def test_special_fields_match_google_cloud_loggings_structured_log_handler(
    headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import google.cloud.logging_v2
    from google.cloud.logging_v2.handlers import StructuredLogHandler

    monkeypatch.setattr(google.cloud.logging_v2, "_instrumentation_emitted", True)  # no diagnostic line
    ours, theirs = configure(), io.StringIO()
    logging.getLogger().addHandler(StructuredLogHandler(stream=theirs, project_id=PROJECT))  # type: ignore[no-untyped-call]
    http_request = {
        "requestMethod": "POST",
        "requestUrl": "http://localhost/v1/generations",
        "status": 202,
        "latency": "0.012s",
        "userAgent": "curl/8.5.0",
        "remoteIp": "203.0.113.7",
    }
    request_headers = {**headers, "User-Agent": "curl/8.5.0"}
    with flask.Flask(__name__).test_request_context(
        "/v1/generations", method="POST", headers=request_headers
    ):
        trace = trace_from_headers(flask.request.headers)  # type: ignore[arg-type]
        assert trace is not None
        with context.scope(
            request_id="req-parity",
            trace_id=trace.trace_id,
            span_id=trace.span_id,
            trace_sampled=trace.sampled,
        ):
            get_logger("genmedia.parity").warning("generation accepted", extra={"http_request": http_request})
    mine, reference = json.loads(ours.getvalue()), json.loads(theirs.getvalue())
    for field in (TRACE, SPAN_ID, TRACE_SAMPLED, SOURCE_LOCATION, "httpRequest", "severity", "message"):
        assert mine[field] == reference[field], field
    assert re.fullmatch(rf"projects/{PROJECT}/traces/[0-9a-f]{{32}}", mine[TRACE])
    assert re.fullmatch(r"[0-9a-f]{16}", mine[SPAN_ID])
    assert set(mine[SOURCE_LOCATION]) == {"file", "line", "function"}


# --- LOG_FILE -------------------------------------------------------------------------------------------


def test_log_file_rotates_by_size_with_the_same_lines_as_stdout(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "genmedia.log"
    out = configure(log_file=str(path), log_file_max_bytes=2048, log_file_backups=3)
    for i in range(80):
        log.info("line %03d %s", i, "x" * 40)
    files = [path.with_name(f"genmedia.log.{n}") for n in (3, 2, 1)] + [path]
    assert all(file.exists() for file in files)
    assert not path.with_name("genmedia.log.4").exists()
    assert all(file.stat().st_size <= 2048 for file in files)
    in_files = "".join(file.read_text(encoding="utf-8") for file in files).splitlines()
    printed = out.getvalue().splitlines()
    assert len(in_files) >= 20
    assert in_files == printed[-len(in_files) :]


def test_unusable_log_file_falls_back_to_stdout_with_a_warning(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    out = configure(log_file=str(blocker / "genmedia.log"))
    log.info("still logging")
    parsed = lines(out)
    assert parsed[0]["severity"] == "WARNING" and "LOG_FILE" in parsed[0]["message"]
    assert parsed[-1]["message"] == "still logging"


# --- robustness: a log call never breaks a request ------------------------------------------------------


class _BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    __str__ = __repr__


class _SecretHolder:
    def __repr__(self) -> str:
        return f"<Client token={GITHUB_TOKEN}>"


def _only_our_handlers() -> None:
    """Records built to break formatting would also break pytest's own capture handler; drop it here."""
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if getattr(h, "_genmedia_handler", False)]


def _log_and_parse(*args: Any, **kwargs: Any) -> dict[str, Any]:
    out = configure()
    _only_our_handlers()
    log.info(*args, **kwargs)
    parsed = lines(out)
    assert len(parsed) == 1
    return parsed[0]


def test_lone_surrogates_become_replacement_characters() -> None:
    text = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")
    line = _log_and_parse("bad bytes: %s", text, extra={"value": text, "nested": {text: [text]}})
    assert "\ufffd" in line["message"] and "\ufffd" in line["value"]
    json.dumps(line, ensure_ascii=False).encode("utf-8")


def test_objects_json_cannot_hold_are_rendered_as_masked_repr() -> None:
    moment = datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    ident = uuid.UUID(int=7)
    line = _log_and_parse(
        "objects",
        extra={
            "client": _SecretHolder(),
            "broken": _BrokenRepr(),
            "when": moment,
            "id": ident,
            "raw": b"\x00bytes",
            "tags": {"b", "a"},
            "pair": (1, 2),
            "nan": math.nan,
            "inf": -math.inf,
            "big": 10**5000,
        },
    )
    assert line["client"] == f"<Client token={MASK}>"
    assert line["broken"].startswith("<unrepresentable _BrokenRepr")
    assert (line["when"], line["id"], line["raw"]) == (moment.isoformat(), str(ident), "\x00bytes")
    assert sorted(line["tags"]) == ["a", "b"] and line["pair"] == [1, 2]
    assert (line["nan"], line["inf"]) == ("nan", "-inf")
    assert line["big"].startswith("<int of ")


def test_huge_strings_are_truncated_with_a_marker() -> None:
    huge = "y" * (MAX_FIELD_CHARS * 4)
    line = _log_and_parse(huge, extra={"body": huge})
    for value in (line["message"], line["body"]):
        assert value.startswith("y" * 100)
        assert value.endswith(f"...[truncated {MAX_FIELD_CHARS * 3} chars]")
        assert len(value) < MAX_FIELD_CHARS + 64


def test_a_line_over_the_size_limit_keeps_its_core_fields() -> None:
    extra = {f"field_{i}": "z" * MAX_FIELD_CHARS for i in range(MAX_LINE_CHARS // MAX_FIELD_CHARS + 2)}
    line = _log_and_parse("too big", extra=extra)
    assert line["message"] == "too big" and "log_truncated" in line
    assert not any(key.startswith("field_") for key in line)


def test_cycles_and_deep_nesting_are_cut() -> None:
    loop: dict[str, Any] = {"name": "loop"}
    loop["self"] = loop
    deep: list[Any] = []
    node = deep
    for _ in range(100):
        node.append([])
        node = node[0]
    line = _log_and_parse("shapes", extra={"loop": loop, "deep": deep})
    assert line["loop"] == {"name": "loop", "self": "[cycle]"}
    assert "too deep" in json.dumps(line["deep"])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("%d items", "three"), "'%d items' [log message format failed: TypeError; args=('three',)]"),
        (("%s and %s", "one"), "'%s and %s' [log message format failed: TypeError; args=('one',)]"),
        (
            ("no placeholders", "extra"),
            "'no placeholders' [log message format failed: TypeError; args=('extra',)]",
        ),
    ],
)
def test_a_bad_format_is_logged_with_its_arguments(args: tuple[Any, ...], expected: str) -> None:
    assert _log_and_parse(*args)["message"] == expected


def test_a_message_that_is_not_a_string_is_rendered() -> None:
    assert _log_and_parse({"event": "dict message"})["message"] == "{'event': 'dict message'}"
    assert _log_and_parse(_BrokenRepr())["message"].startswith("<unrepresentable _BrokenRepr")


def test_an_exception_that_cannot_be_printed_still_logs() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str")

    out = configure()
    _only_our_handlers()
    try:
        raise Unprintable()
    except Unprintable:
        log.exception("failed")
    assert "Unprintable" in lines(out)[0]["stack_trace"]


def test_a_failing_processor_still_produces_a_line() -> None:
    def explode(record: logging.LogRecord, event: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("processor bug")

    formatter = JsonFormatter(PROJECT, processors=[explode])
    record = log.makeRecord(log.name, logging.ERROR, __file__, 1, "kept %s", (GITHUB_TOKEN,), None)
    line = json.loads(formatter.format(record))
    assert line["severity"] == "ERROR" and line["log_error"] == "rendering failed: RuntimeError"
    assert GITHUB_TOKEN not in json.dumps(line)


def test_a_stream_that_cannot_encode_still_gets_valid_json() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    configure_logging(settings_for_test(log_level="INFO"), stream=stream)
    log.info("prompt: café ☕")
    stream.flush()
    assert json.loads(raw.getvalue().decode("ascii"))["message"] == "prompt: café ☕"


def test_broken_handler_reports_on_stderr_and_never_raises(capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    configure_logging(settings_for_test(log_level="INFO"), stream=stream)
    stream.close()
    log.info("into a closed stream")  # must not raise into the request
    assert "Logging error" in capsys.readouterr().err


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8), children, max_size=4)
        | st.tuples(children, children)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    message=st.text(),
    extra=st.dictionaries(st.text(min_size=1, max_size=10).filter(str.isidentifier), _JSONISH, max_size=4),
)
def test_any_message_and_extra_render_as_exactly_one_json_line(message: str, extra: dict[str, Any]) -> None:
    with capture_logs() as captured:
        formatter = JsonFormatter(PROJECT)
        record = log.makeRecord(log.name, logging.INFO, __file__, 1, message, (), None, extra=extra)
        line = formatter.format(record)
    assert "\n" not in line
    assert isinstance(json.loads(line), dict)
    line.encode("utf-8")
    assert captured == []


def test_capture_logs_collects_rendered_lines_as_dicts() -> None:
    configure()
    with capture_logs() as captured, context.scope(request_id="req-captured"):
        log.info("captured %s", "line", extra={"kind": "image"})
    log.info("not captured")
    assert len(captured) == 1
    assert captured[0]["message"] == "captured line"
    assert (captured[0]["request_id"], captured[0]["kind"]) == ("req-captured", "image")


def test_capture_logs_works_before_configuration() -> None:
    with capture_logs(level="DEBUG") as captured:
        log.debug("early")
    assert captured[0]["message"] == "early" and captured[0]["severity"] == "DEBUG"
