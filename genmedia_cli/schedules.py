"""`genmedia schedule create|list|show|pause|resume|delete`: cron and one-off schedules."""

from __future__ import annotations

import argparse
from typing import Any

from genmedia_cli.context import Context, out, say, segment
from genmedia_cli.errors import OK, ApiError, UsageError
from genmedia_cli.http import new_idempotency_key
from genmedia_cli.inputs import read_requests, request_from_flags

PAGE_SIZE = 200


def _when(schedule: dict[str, Any]) -> str:
    if schedule.get("cron"):
        return f"{schedule['cron']} ({schedule.get('timezone') or 'UTC'})"
    return f"once at {schedule.get('run_at')}"


def _body(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str]]:
    """The schedule body from flags, and field notes (`requests[2]` -> file line) for errors."""
    if args.file and args.prompt:
        raise UsageError("give either a prompt or --file, not both")
    if args.file:
        requests = read_requests(args.file, file_format=args.format, defaults={"kind": args.kind, "model": args.model})
        body: dict[str, Any] = {"requests": requests.items}
        notes = requests.notes("requests")
    elif args.prompt:
        body, notes = {"request": request_from_flags(args.kind, args.prompt, vars(args))}, {}
    else:
        raise UsageError("give a prompt (what to generate) or --file with one request a line")
    if args.cron:
        body["cron"] = args.cron
        if args.timezone:
            body["timezone"] = args.timezone
    else:
        if args.timezone:
            raise UsageError("--timezone goes with --cron; give --at a time with an offset (2030-01-01T09:00Z)")
        body["run_at"] = args.at
    if args.webhook:
        body["webhook_url"] = args.webhook
    return body, notes


def create(args: argparse.Namespace) -> int:
    """POST /v1/schedules; prints the schedule id, and when it runs next."""
    ctx = Context.from_args(args)
    body, notes = _body(args)
    try:
        schedule = ctx.scheduling().call("POST", "/v1/schedules", body,
                                         idempotency_key=args.idempotency_key or new_idempotency_key())
    except ApiError as err:
        err.field_notes.update(notes)
        raise
    return show_one(ctx, schedule)


def webhook_secret(args: argparse.Namespace) -> int:
    """GET /v1/webhooks/secret: the secret that signs this key's webhooks, alone on stdout."""
    ctx = Context.from_args(args)
    found = ctx.generation().call("GET", "/v1/webhooks/secret")
    if ctx.as_json:
        ctx.emit_json(found)
    else:
        out(found["secret"])
    return OK


def show_one(ctx: Context, schedule: dict[str, Any]) -> int:
    """The schedule as JSON, or its id on stdout and a summary on stderr."""
    if ctx.as_json:
        ctx.emit_json(schedule)
        return OK
    out(schedule["id"])
    say(f"{schedule['id']} {schedule['state']}: {_when(schedule)}, next run {schedule.get('next_run_at') or '-'}, "
        f"last run {schedule.get('last_run_at') or '-'}, {len(schedule.get('runs') or [])} recent runs")
    for run in schedule.get("runs") or []:
        outcome = run.get("batch_id") or f"not run: {(run.get('error') or {}).get('reason', 'unknown')}"
        say(f"  due {run['due_at']} -> {outcome}")
    return OK


def list_all(args: argparse.Namespace) -> int:
    """GET /v1/schedules, every page (or up to --limit): a table, or a JSON array."""
    ctx = Context.from_args(args)
    client = ctx.scheduling()
    schedules: list[dict[str, Any]] = []
    token: str | None = None
    while args.limit is None or len(schedules) < args.limit:
        query = {"page_size": PAGE_SIZE, **({"page_token": token} if token else {})}
        page = client.call("GET", "/v1/schedules", query=query)
        schedules += page["schedules"]
        token = page.get("next_page_token")
        if not token:
            break
    schedules = schedules[:args.limit] if args.limit is not None else schedules
    if ctx.as_json:
        ctx.emit_json(schedules)
        return OK
    rows = [("ID", "STATE", "WHEN", "NEXT RUN", "LAST RUN")] + [
        (s["id"], s["state"], _when(s), s.get("next_run_at") or "-", s.get("last_run_at") or "-") for s in schedules
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return OK


def show(args: argparse.Namespace) -> int:
    """GET /v1/schedules/{id}: when it runs, and its recent runs."""
    ctx = Context.from_args(args)
    return show_one(ctx, ctx.scheduling().call("GET", f"/v1/schedules/{segment(args.schedule_id)}"))


def set_paused(args: argparse.Namespace) -> int:
    """POST /v1/schedules/{id}:pause or :resume."""
    ctx = Context.from_args(args)
    action = "pause" if args.pause else "resume"
    return show_one(ctx, ctx.scheduling().call("POST", f"/v1/schedules/{segment(args.schedule_id)}:{action}"))


def delete(args: argparse.Namespace) -> int:
    """DELETE /v1/schedules/{id}; the batches it already created stay."""
    ctx = Context.from_args(args)
    ctx.scheduling().call("DELETE", f"/v1/schedules/{segment(args.schedule_id)}")
    say(f"deleted {args.schedule_id}")
    return OK
