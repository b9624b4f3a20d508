"""What every command gets: the resolved config, API clients, and how to print results."""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from genmedia_cli.config import Config, load_config
from genmedia_cli.errors import WaitTimeoutError
from genmedia_cli.http import Client
from genmedia_cli.progress import Progress


@dataclass(frozen=True)
class Context:
    """One invocation: config, output mode, retry budget."""

    config: Config
    as_json: bool = False
    retries: int = 3

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Context:
        """Flags first, then env vars, then the config file."""
        config = load_config(getattr(args, "url", None), getattr(args, "scheduling_url", None))
        return cls(config, as_json=getattr(args, "json", False), retries=getattr(args, "retries", 3))

    def generation(self) -> Client:
        """The generation function (generations and batches)."""
        return Client(self.config.url, self.config.require_key(), retries=self.retries)

    def scheduling(self) -> Client:
        """The scheduling function (schedules)."""
        return Client(self.config.scheduling_url, self.config.require_key(), retries=self.retries)

    def emit_json(self, value: Any) -> None:
        """A result as JSON on stdout, for scripts."""
        out(json.dumps(value, indent=2, ensure_ascii=False))


def out(text: str) -> None:
    """A result line on stdout, what scripts read."""
    sys.stdout.write(text + "\n")


def say(text: str) -> None:
    """A note for the person at the terminal (stderr: stdout stays for results)."""
    sys.stderr.write(f"genmedia: {text}\n")


def segment(value: str) -> str:
    """An id as one URL path segment, whatever it holds."""
    return urllib.parse.quote(value, safe="")


def poll(fetch: Callable[[], dict[str, Any]], describe: Callable[[dict[str, Any]], str],
         finished: Callable[[dict[str, Any]], bool], *, timeout: float, interval: float, what: str,
         follow: str) -> dict[str, Any]:
    """Fetch until `finished`, showing `describe` of each state; past `timeout` seconds, WaitTimeoutError
    saying how to `follow` it later."""
    progress = Progress()
    deadline = time.monotonic() + timeout
    try:
        while True:
            state = fetch()
            progress.update(describe(state))
            if finished(state):
                return state
            if time.monotonic() + interval > deadline:
                raise WaitTimeoutError(f"{what} is still {state.get('status')} after {timeout:g}s; "
                                       f"follow it with: {follow}")
            time.sleep(interval)
    finally:
        progress.done()
