"""`genmedia batch results`, `job list`, `job cancel`, `batch cancel`: getting results back, and stopping work."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from genmedia_cli.context import Context, out, say, segment
from genmedia_cli.downloads import fetch, output_names
from genmedia_cli.errors import OK, UsageError
from genmedia_cli.http import Client
from genmedia_cli.progress import Progress, bar

PAGE_SIZE = 100


def batch_jobs(client: Client, batch_id: str) -> list[dict[str, Any]]:
    """Every job of a batch (each output with a fresh link), in submission order."""
    jobs: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        query = {"batch_id": batch_id, "page_size": PAGE_SIZE, **({"page_token": token} if token else {})}
        page = client.call("GET", "/v1/generations", query=query)
        jobs += page["generations"]
        token = page.get("next_page_token")
        if not token:
            return sorted(jobs, key=lambda job: job["id"])  # item ids end in their submission index


def download_results(args: argparse.Namespace) -> int:
    """Every output of a finished batch into DIR, named by custom_id, and its results file beside them."""
    ctx = Context.from_args(args)
    client = ctx.generation()
    batch = client.call("GET", f"/v1/batches/{segment(args.batch_id)}")
    if not batch.get("results"):
        raise UsageError(f"{batch['id']} is {batch['status']}: its results exist once no item is queued or "
                         f"running (follow it with: genmedia batch status {batch['id']} --wait)")
    folder = Path(args.output)
    folder.mkdir(parents=True, exist_ok=True)
    fetch(batch["results"]["url"], folder / f"{batch['id']}.jsonl")
    jobs = batch_jobs(client, batch["id"])
    files = [(output["url"], folder / name) for index, job in enumerate(jobs)
             for output, name in zip(job.get("outputs") or [], output_names(job, index), strict=True)]
    progress = Progress()
    try:
        for done, (url, path) in enumerate(files, start=1):
            fetch(url, path)
            progress.update(f"{batch['id']} {bar(done, len(files))} {done}/{len(files)} files")
    finally:
        progress.done()
    say(f"{len(files)} files and {batch['id']}.jsonl in {folder}")
    out(str(folder))
    return OK


def list_jobs(args: argparse.Namespace) -> int:
    """GET /v1/generations, newest first, every page (or up to --limit); a table or JSON."""
    ctx = Context.from_args(args)
    client = ctx.generation()
    filters = {k: v for k, v in (("batch_id", args.batch), ("status", args.status)) if v}
    jobs: list[dict[str, Any]] = []
    token: str | None = None
    while args.limit is None or len(jobs) < args.limit:
        page = client.call("GET", "/v1/generations",
                           query={**filters, "page_size": PAGE_SIZE, **({"page_token": token} if token else {})})
        jobs += page["generations"]
        token = page.get("next_page_token")
        if not token:
            break
    jobs = jobs[:args.limit] if args.limit is not None else jobs
    if ctx.as_json:
        ctx.emit_json(jobs)
        return OK
    rows = [("ID", "KIND", "STATUS", "CUSTOM ID", "CREATED")] + [
        (j["id"], j["kind"], j["status"], j.get("custom_id") or "-", j["created_at"]) for j in jobs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return OK


def cancel_job(args: argparse.Namespace) -> int:
    """POST /v1/generations/{id}:cancel: prints the status after (a finished job stays as it was)."""
    ctx = Context.from_args(args)
    job = ctx.generation().call("POST", f"/v1/generations/{segment(args.job_id)}:cancel")
    if ctx.as_json:
        ctx.emit_json(job)
    else:
        out(f"{job['id']} {job['status']}")
    return OK


def cancel_batch(args: argparse.Namespace) -> int:
    """POST /v1/batches/{id}:cancel: prints the counts after."""
    ctx = Context.from_args(args)
    batch = ctx.generation().call("POST", f"/v1/batches/{segment(args.batch_id)}:cancel")
    if ctx.as_json:
        ctx.emit_json(batch)
    else:
        out(f"{batch['id']} {batch['status']} " + json.dumps(batch["counts"], separators=(",", ":")))
    return OK
