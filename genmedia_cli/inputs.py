"""Generation requests from the command line or from a file: JSONL (one request object a line) or CSV (a
header naming request fields, `prompt` required). Each request remembers the line it came from, so an
API error about `items[3].prompt` can point at the line to fix."""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genmedia_cli.errors import UsageError

MAX_BATCH_ITEMS = 1000
_INTEGERS = ("number_of_outputs", "duration_seconds", "seed")
_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
FLAG_FIELDS = ("model", "negative_prompt", "number_of_outputs", "aspect_ratio", "resolution", "duration_seconds",
               "seed", "person_generation", "generate_audio")


@dataclass(frozen=True)
class Requests:
    """Requests read from one source, and where each came from (`prompts.csv line 4`)."""

    items: list[dict[str, Any]]
    origins: list[str]

    def notes(self, prefix: str) -> dict[str, str]:
        """Field-path prefix (`items[3]`) -> origin, for ApiError.field_notes."""
        return {f"{prefix}[{i}]": origin for i, origin in enumerate(self.origins)}


def request_from_flags(kind: str, prompt: str, options: dict[str, Any]) -> dict[str, Any]:
    """A request from `generate`/`schedule create` flags; options left unset are not sent."""
    request: dict[str, Any] = {"kind": kind, "prompt": prompt}
    request.update({name: options[name] for name in FLAG_FIELDS if options.get(name) is not None})
    return request


def _csv_value(name: str, value: str, origin: str) -> Any:
    if name in _INTEGERS:
        try:
            return int(value)
        except ValueError:
            raise UsageError(f"{origin}: {name} must be a whole number, not {value[:40]!r}") from None
    if name == "generate_audio":
        if value.lower() not in _BOOLEANS:
            raise UsageError(f"{origin}: generate_audio must be true or false, not {value[:40]!r}")
        return _BOOLEANS[value.lower()]
    return value


def _from_csv(text: str, name: str) -> tuple[list[dict[str, Any]], list[str]]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "prompt" not in reader.fieldnames:
        raise UsageError(f"{name}: a CSV needs a header row with a 'prompt' column")
    items, origins = [], []
    for row in reader:
        origin = f"{name} line {reader.line_num}"
        if None in row:
            raise UsageError(f"{origin}: more cells than the header has columns")
        cells = {k.strip(): v.strip() for k, v in row.items() if k and v is not None and v.strip()}
        if cells:
            items.append({k: _csv_value(k, v, origin) for k, v in cells.items()})
            origins.append(origin)
    return items, origins


def _from_jsonl(text: str, name: str) -> tuple[list[dict[str, Any]], list[str]]:
    items, origins = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise UsageError(f"{name} line {number}: not JSON ({err.msg})") from None
        if not isinstance(item, dict):
            raise UsageError(f"{name} line {number}: each line must be a JSON object (a generation request)")
        items.append(item)
        origins.append(f"{name} line {number}")
    return items, origins


def read_requests(path: str, *, file_format: str | None = None, defaults: dict[str, Any] | None = None) -> Requests:
    """Requests from a JSONL or CSV file (`-` for stdin); `defaults` fill fields an item leaves out."""
    name = "stdin" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"{name}: cannot read it ({err})") from None
    kind = file_format or ("csv" if name.lower().endswith(".csv") else "jsonl")
    items, origins = _from_csv(text, name) if kind == "csv" else _from_jsonl(text, name)
    if not items:
        raise UsageError(f"{name}: no requests in it")
    if len(items) > MAX_BATCH_ITEMS:
        raise UsageError(f"{name}: {len(items)} requests; a batch takes at most {MAX_BATCH_ITEMS}, split the file")
    filled = [{**{k: v for k, v in (defaults or {}).items() if v is not None}, **item} for item in items]
    return Requests(filled, origins)
