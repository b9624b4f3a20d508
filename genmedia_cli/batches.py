"""`genmedia batch submit FILE` and `genmedia batch status ID`, with a live bar of item states."""

from __future__ import annotations

import argparse
from typing import Any

from genmedia_cli.context import Context, out, poll, say, segment
from genmedia_cli.errors import OK, ApiError, JobFailedError
from genmedia_cli.http import Client, new_idempotency_key
from genmedia_cli.inputs import read_requests
from genmedia_cli.progress import batch_line

FINAL = ("succeeded", "partially_failed", "failed", "cancelled")


def _watch(client: Client, batch: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    first = [batch]  # the state we already have is shown at once, without a second request

    def fetch() -> dict[str, Any]:
        return first.pop() if first else client.call("GET", f"/v1/batches/{segment(batch['id'])}")

    return poll(fetch, batch_line, lambda b: b["status"] in FINAL, timeout=args.timeout, interval=args.interval,
                what=batch["id"], follow=f"genmedia batch status {batch['id']} --wait")


def report(ctx: Context, batch: dict[str, Any]) -> int:
    """The final line (or JSON) on stdout; exit 4 when any item failed."""
    if ctx.as_json:
        ctx.emit_json(batch)
    else:
        out(f"{batch['status']}  {batch_line(batch)}")
    failed = int(batch.get("counts", {}).get("failed", 0))
    if batch["status"] in ("partially_failed", "failed"):
        raise JobFailedError(f"{batch['id']} {batch['status']}: {failed} of {batch['total']} items failed")
    return OK


def submit(args: argparse.Namespace) -> int:
    """POST /v1/batches from a JSONL or CSV file, then follow its items unless --no-wait."""
    ctx = Context.from_args(args)
    requests = read_requests(args.file, file_format=args.format, defaults={"kind": args.kind, "model": args.model})
    client = ctx.generation()
    try:
        body: dict[str, Any] = {"items": requests.items}
        if args.webhook:
            body["webhook_url"] = args.webhook
        batch = client.call("POST", "/v1/batches", body, idempotency_key=args.idempotency_key or new_idempotency_key())
    except ApiError as err:
        err.field_notes.update(requests.notes("items"))
        raise
    say(f"submitted {batch['total']} requests from {'stdin' if args.file == '-' else args.file} as {batch['id']}")
    if args.no_wait:
        if ctx.as_json:
            ctx.emit_json(batch)
        else:
            out(batch["id"])
        return OK
    return report(ctx, _watch(client, batch, args))


def status(args: argparse.Namespace) -> int:
    """GET /v1/batches/{id}; with --wait, follow it until every item has ended."""
    ctx = Context.from_args(args)
    client = ctx.generation()
    batch = client.call("GET", f"/v1/batches/{segment(args.batch_id)}")
    if args.wait and batch["status"] not in FINAL:
        batch = _watch(client, batch, args)
    return report(ctx, batch)
