"""The `genmedia` command: argument parsing and exit codes; each command lives in its own module."""

from __future__ import annotations

import argparse
import os
import sys

from genmedia_cli import __version__, api_keys, batches, jobs, results, schedules
from genmedia_cli.config import DEFAULT_SCHEDULING_URL, DEFAULT_URL
from genmedia_cli.errors import OK, CliError

EPILOG = f"""\
settings: --url / GENMEDIA_URL (generation, default {DEFAULT_URL}), --scheduling-url /
GENMEDIA_SCHEDULING_URL (default {DEFAULT_SCHEDULING_URL}), GENMEDIA_API_KEY; or url, scheduling_url,
api_key in ~/.config/genmedia/config.toml.

exit codes: 0 ok, 1 the API refused the request (4xx), 2 usage (flags, config, input file),
3 unavailable (429, 5xx, network, or --timeout ran out: try again), 4 a job or batch item failed.
"""


def _common() -> argparse.ArgumentParser:
    """Options accepted before or after the command (SUPPRESS: the one given wins, none means default)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help="the generation function's URL")
    common.add_argument("--scheduling-url", default=argparse.SUPPRESS, help="the scheduling function's URL")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print results as JSON")
    common.add_argument("--retries", type=int, default=argparse.SUPPRESS,
                        help="retries of 429/503/network failures, where safe (default 3)")
    return common


def _request_options(parser: argparse.ArgumentParser, *, model: bool = True) -> None:
    if model:
        parser.add_argument("--model", help="a Vertex AI model id (default: the kind's default model)")
    parser.add_argument("--negative-prompt")
    parser.add_argument("-n", "--number-of-outputs", type=int)
    parser.add_argument("--aspect-ratio", help="e.g. 16:9")
    parser.add_argument("--resolution", help="e.g. 1080p, 2K")
    parser.add_argument("--duration-seconds", "--duration", type=int, help="videos")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--person-generation", choices=["dont_allow", "allow_adult", "allow_all"])
    parser.add_argument("--audio", dest="generate_audio", action=argparse.BooleanOptionalAction, default=None,
                        help="videos: generate an audio track (models that can)")
    parser.add_argument("--idempotency-key", help="resend safely: the same key and body return the same resource")


def _webhook_option(parser: argparse.ArgumentParser, when: str) -> None:
    parser.add_argument("--webhook", metavar="URL", help=f"https URL that gets a signed POST when {when} "
                        "(verify it with the secret from `genmedia webhook secret`)")


def _wait_options(parser: argparse.ArgumentParser, timeout: float) -> None:
    parser.add_argument("--timeout", type=float, default=timeout, help=f"seconds to wait (default {timeout:.0f})")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between polls (default 2)")


def _file_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=["jsonl", "csv"], help="default: by extension (.csv, else JSONL)")
    parser.add_argument("--kind", choices=["image", "video"], default="image", help="for items without one")
    parser.add_argument("--model", help="for items without one")


def _add_generation_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser("generate", parents=[common], help="one image or video")
    p.add_argument("kind", choices=["image", "video"])
    p.add_argument("prompt")
    _request_options(p)
    pictures = p.add_argument_group("input pictures: a file (uploaded), gen_x[:N] (a job's output), upl_x, gs://")
    pictures.add_argument("--image", help="videos: the first frame; images: the picture to edit")
    pictures.add_argument("--from", dest="from_job", metavar="JOB[:N]",
                          help="chain: output N (default 0) of one of your jobs as --image")
    pictures.add_argument("--last-frame", help="videos: the last frame (with --image)")
    pictures.add_argument("--reference", action="append", metavar="PICTURE",
                          help="videos: an asset reference image (repeat, up to the model's limit)")
    pictures.add_argument("--input", action="append", metavar="PICTURE",
                          help="images: a picture to compose (repeat, up to the model's limit)")
    _webhook_option(p, "it finishes")
    p.add_argument("--wait", action="store_true", help="poll until it ends, then print the output URIs")
    p.add_argument("-o", "--output", help="with --wait: save the output here (more outputs: NAME-2.ext, ...)")
    _wait_options(p, 600)
    p.set_defaults(run=jobs.generate)

    job = sub.add_parser("job", help="one generation").add_subparsers(dest="action", required=True, metavar="ACTION")
    p = job.add_parser("status", parents=[common], help="a job's status; --wait follows it")
    p.add_argument("job_id")
    p.add_argument("--wait", action="store_true")
    _wait_options(p, 600)
    p.set_defaults(run=jobs.status)
    p = job.add_parser("list", parents=[common], help="your jobs, newest first")
    p.add_argument("--batch", help="only the items of this batch")
    p.add_argument("--status", choices=["queued", "running", "succeeded", "failed", "cancelled"])
    p.add_argument("--limit", type=int)
    p.set_defaults(run=results.list_jobs)
    p = job.add_parser("cancel", parents=[common], help="cancel a job not started yet, or a running video")
    p.add_argument("job_id")
    p.set_defaults(run=results.cancel_job)

    batch = sub.add_parser("batch", help="many generations").add_subparsers(dest="action", required=True,
                                                                          metavar="ACTION")
    p = batch.add_parser("submit", parents=[common], help="submit a JSONL or CSV file, follow its items")
    p.add_argument("file", help="JSONL (a request object a line) or CSV (header with a prompt column); - is stdin")
    _file_options(p)
    p.add_argument("--no-wait", action="store_true", help="print the batch id and return")
    _webhook_option(p, "the batch completes")
    p.add_argument("--idempotency-key")
    _wait_options(p, 3600)
    p.set_defaults(run=batches.submit)
    p = batch.add_parser("status", parents=[common], help="a batch's item counts; --wait follows it")
    p.add_argument("batch_id")
    p.add_argument("--wait", action="store_true")
    _wait_options(p, 3600)
    p.set_defaults(run=batches.status)
    p = batch.add_parser("results", parents=[common], help="download every output, named by custom_id")
    p.add_argument("batch_id")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the files and the results file")
    p.set_defaults(run=results.download_results)
    p = batch.add_parser("cancel", parents=[common], help="cancel every item not started, and running videos")
    p.add_argument("batch_id")
    p.set_defaults(run=results.cancel_batch)


def _add_schedule_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    schedule = sub.add_parser("schedule", help="cron and one-off schedules").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = schedule.add_parser("create", parents=[common], help="generate on a cron, or once at a time")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", help="5 fields, e.g. '0 9 * * 1-5'")
    when.add_argument("--at", help="RFC 3339 with offset, e.g. 2030-01-01T09:00:00Z")
    p.add_argument("--timezone", help="IANA zone for --cron (default UTC)")
    p.add_argument("prompt", nargs="?", help="what to generate (or --file for a batch)")
    p.add_argument("--file", help="JSONL or CSV of requests: each run creates a batch of them")
    _file_options(p)  # --kind and --model apply to the prompt too
    _request_options(p, model=False)
    _webhook_option(p, "each run's batch completes")
    p.set_defaults(run=schedules.create)
    p = schedule.add_parser("list", parents=[common], help="your schedules, newest first")
    p.add_argument("--limit", type=int)
    p.set_defaults(run=schedules.list_all)
    for name, helptext in (("show", "one schedule and its recent runs"), ("delete", "delete a schedule"),
                           ("pause", "stop firing until resumed"), ("resume", "fire again from now on")):
        p = schedule.add_parser(name, parents=[common], help=helptext)
        p.add_argument("schedule_id")
        p.set_defaults(run={"show": schedules.show, "delete": schedules.delete}.get(name, schedules.set_paused),
                       pause=name == "pause")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    common = _common()
    parser = argparse.ArgumentParser(prog="genmedia", parents=[common], epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     description="A command-line client of the genmedia API.")
    parser.add_argument("--version", action="version", version=f"genmedia {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_generation_commands(sub, common)
    _add_schedule_commands(sub, common)
    webhook = sub.add_parser("webhook", help="webhooks").add_subparsers(dest="action", required=True, metavar="ACTION")
    p = webhook.add_parser("secret", parents=[common], help="print the secret that signs your webhooks (whsec_...)")
    p.set_defaults(run=schedules.webhook_secret)
    keys = sub.add_parser("api-key", help="operator: mint API keys (needs database access)").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = keys.add_parser("create", help="mint a key in the database; printed once, on the last line")
    p.add_argument("name", help="who or what the key is for")
    p.add_argument("--scopes", default="generate,batch,schedule", help="generate, batch, schedule, admin")
    p.add_argument("--expires-in-days", type=float)
    p.set_defaults(run=api_keys.create_api_key)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; the exit code says how it went (see EPILOG)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except CliError as err:
        lines = err.lines()
        sys.stderr.write("\n".join([f"genmedia: {lines[0]}", *lines[1:]]) + "\n")
        return err.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("genmedia: interrupted\n")
        return 130
    except BrokenPipeError:  # `genmedia schedule list | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
