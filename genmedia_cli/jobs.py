"""`genmedia generate` and `genmedia job status`: one image or video, and following it to the end."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genmedia_cli.context import Context, out, poll, say, segment
from genmedia_cli.downloads import fetch, numbered
from genmedia_cli.errors import OK, JobFailedError
from genmedia_cli.http import Client, new_idempotency_key
from genmedia_cli.inputs import request_from_flags
from genmedia_cli.media import input_fields

FINAL = ("succeeded", "failed", "cancelled")


def _wait(client: Client, job: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    # Reading a running video is what advances it, so polling is also what moves it along.
    return poll(lambda: client.call("GET", f"/v1/generations/{segment(job['id'])}"),
                lambda j: f"{j['id']} {j['kind']} {j['status']}", lambda j: j["status"] in FINAL,
                timeout=args.timeout, interval=args.interval, what=job["id"],
                follow=f"genmedia job status {job['id']} --wait")


def report(ctx: Context, job: dict[str, Any]) -> int:
    """Output URIs on stdout (or the job as JSON); a failed job exits 4 with its reason."""
    if ctx.as_json:
        ctx.emit_json(job)
    if job["status"] in ("failed", "cancelled"):
        error = job.get("error") or {}
        raise JobFailedError(f"{job['id']} {job['status']} {error.get('reason', 'UNKNOWN')}: "
                             f"{error.get('message', '')}")
    if ctx.as_json:
        return OK
    if job["status"] == "succeeded":
        for output in job["outputs"]:
            out(output["uri"])
    else:
        out(job["id"])
        say(f"{job['id']} is {job['status']}; follow it with: genmedia job status {job['id']} --wait")
    return OK


def generate(args: argparse.Namespace) -> int:
    """POST /v1/generations; with --wait, poll until the job ends and print its output URIs."""
    ctx = Context.from_args(args)
    client = ctx.generation()
    request = request_from_flags(args.kind, args.prompt, vars(args))
    request.update(input_fields(client, vars(args)))
    if args.webhook:
        request["webhook_url"] = args.webhook
    job = client.call("POST", "/v1/generations", request, idempotency_key=args.idempotency_key or new_idempotency_key())
    if args.wait and job["status"] not in FINAL:
        job = _wait(client, job, args)
    if getattr(args, "output", None) and job["status"] == "succeeded":
        paths = numbered(Path(args.output), len(job["outputs"]))
        for output, path in zip(job["outputs"], paths, strict=True):
            fetch(output["url"], path)
            say(f"saved {path}")
    return report(ctx, job)


def status(args: argparse.Namespace) -> int:
    """GET /v1/generations/{id}; with --wait, until it ends."""
    ctx = Context.from_args(args)
    client = ctx.generation()
    job = client.call("GET", f"/v1/generations/{segment(args.job_id)}")
    if args.wait and job["status"] not in FINAL:
        job = _wait(client, job, args)
    return report(ctx, job)
