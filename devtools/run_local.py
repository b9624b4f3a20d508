"""`make run`: PostgreSQL, migrations, and the three functions on their ports, until Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from devtools.api_key import local_pepper, mint_key
from devtools.local_tick import LocalTicker, parse_interval
from devtools.migrate import ROOT, local_database_url, upgrade_to_head
from devtools.pubsub_emulator import PROJECT, Emulator, EmulatorUnavailable, running_emulator

FUNCTIONS = (
    ("generation", "GENERATION_PORT", 8080, "http"),
    ("batch", "BATCH_PORT", 8081, "cloudevent"),
    ("scheduling", "SCHEDULING_PORT", 8082, "http"),
)


def function_command(name: str, port: int, signature: str) -> list[str]:
    """The functions-framework command line that serves one function from the repo root."""
    return [
        str(Path(sys.executable).parent / "functions-framework"),
        f"--source=functions/{name}/main.py",
        f"--target={name}",
        f"--signature-type={signature}",
        f"--port={port}",
        "--host=127.0.0.1",
    ]


def _environment() -> tuple[dict[str, str], str | None]:
    env = dict(os.environ)
    env.setdefault("GENERATION_BACKEND", "local")
    env.setdefault("LOCAL_DATA_DIR", str(ROOT / ".local" / "data"))
    env.setdefault("VIDEO_POLL_INTERVAL_SECONDS", "2")
    env.setdefault("WEBHOOK_ALLOW_PRIVATE", "true")  # webhooks to a receiver on this machine (never metadata)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("PUBSUB_BATCH_TOPIC", "genmedia-batch")
    env.setdefault("GOOGLE_CLOUD_PROJECT", "genmedia-local")
    if not env.get("DATABASE_URL") and not env.get("INSTANCE_CONNECTION_NAME"):
        env["DATABASE_URL"] = local_database_url()
        env.setdefault("API_KEY_PEPPER", local_pepper())
        print("PostgreSQL: embedded server, data under .local/pgdata", flush=True)  # noqa: T201
    upgrade_to_head(env.get("DATABASE_URL"))
    key = None
    if env.get("API_KEY_PEPPER"):
        key = mint_key("dev", ["generate", "batch", "schedule", "admin"], pepper=env["API_KEY_PEPPER"])
        print(f"development API key (admin): {key}", flush=True)  # noqa: T201
    return env, key


def _pubsub(stack: ExitStack, env: dict[str, str]) -> Emulator | None:
    """The Pub/Sub emulator for batches, unless PUBSUB_EMULATOR_HOST points at one already."""
    if env.get("PUBSUB_EMULATOR_HOST"):
        return None
    data = ROOT / ".local" / "pubsub"
    data.mkdir(parents=True, exist_ok=True)
    project = env.get("GOOGLE_CLOUD_PROJECT", PROJECT)
    try:
        emulator = stack.enter_context(running_emulator(data, project=project))
    except EmulatorUnavailable as err:
        print(f"Pub/Sub emulator not started ({err}): batches stay queued", flush=True)  # noqa: T201
        return None
    env["PUBSUB_EMULATOR_HOST"] = emulator.host
    print(f"Pub/Sub emulator: {emulator.host}", flush=True)  # noqa: T201
    return emulator


def _subscribe(emulator: Emulator, env: dict[str, str]) -> None:
    topic = emulator.create_topic(env["PUBSUB_BATCH_TOPIC"].rsplit("/", 1)[-1])
    batch_port = int(env.get("BATCH_PORT", 8081))
    emulator.create_push_subscription("genmedia-batch-push", topic, f"http://127.0.0.1:{batch_port}/")


def main() -> int:
    """Start everything, wait for Ctrl-C or a child dying, then stop everything started."""
    with ExitStack() as stack:
        seconds = parse_interval(os.environ.get("LOCAL_TICK_SECONDS"))
        env, key = _environment()
        emulator = _pubsub(stack, env)
        return _serve(env, emulator, _ticker(env, key, seconds))


def _ticker(env: dict[str, str], key: str | None, seconds: float) -> LocalTicker | None:
    """Cloud Scheduler's stand-in, announced at start-up (or why there is none)."""
    port = int(env.get("SCHEDULING_PORT", 8082))
    if seconds == 0 or key is None:
        why = "LOCAL_TICK_SECONDS=0" if seconds == 0 else "no development key (API_KEY_PEPPER is unset)"
        print(f"local tick: off ({why}); schedules fire only when POST /v1/schedules:tick is called",  # noqa: T201
              flush=True)
        return None
    print(f"local tick: POST http://127.0.0.1:{port}/v1/schedules:tick every {seconds:g}s with the "  # noqa: T201
          "development key, standing in for Cloud Scheduler (LOCAL_TICK_SECONDS)", flush=True)
    return LocalTicker(f"http://127.0.0.1:{port}", key, seconds)


def _serve(env: dict[str, str], emulator: Emulator | None, ticker: LocalTicker | None = None) -> int:
    children: list[subprocess.Popen[bytes]] = []
    for name, port_var, default_port, signature in FUNCTIONS:
        port = int(env.get(port_var, default_port))
        # Each server in its own process group: Ctrl-C reaches only us, and we stop each whole group
        # (gunicorn master and workers) once. A second signal mid-shutdown can wedge a gunicorn worker.
        children.append(subprocess.Popen(function_command(name, port, signature), cwd=ROOT, env=env,
                                         start_new_session=True))
        print(f"{name}: http://127.0.0.1:{port}", flush=True)  # noqa: T201
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        if emulator is not None:
            _subscribe(emulator, env)
        if ticker is not None:
            ticker.start()
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("a function exited; stopping the others", file=sys.stderr)  # noqa: T201
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        if ticker is not None:
            ticker.stop()
        _stop(children)


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each server's group, wait, then SIGKILL whatever is left of it."""
    for child in children:
        _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        _signal_group(child, signal.SIGKILL)  # the group may outlive its leader (orphaned workers)


def _signal_group(child: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(child.pid, sig)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    sys.exit(main())
