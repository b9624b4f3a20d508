"""`make run`: PostgreSQL, migrations, and the three functions on their ports, until Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from devtools.api_key import local_pepper, mint_key
from devtools.migrate import ROOT, local_database_url, upgrade_to_head

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


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("GENERATION_BACKEND", "local")
    env.setdefault("LOCAL_DATA_DIR", str(ROOT / ".local" / "data"))
    env.setdefault("VIDEO_POLL_INTERVAL_SECONDS", "2")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("PUBSUB_BATCH_TOPIC", "genmedia-batch")
    if not env.get("DATABASE_URL") and not env.get("INSTANCE_CONNECTION_NAME"):
        env["DATABASE_URL"] = local_database_url()
        env.setdefault("API_KEY_PEPPER", local_pepper())
        print("PostgreSQL: embedded server, data under .local/pgdata", flush=True)  # noqa: T201
    upgrade_to_head(env.get("DATABASE_URL"))
    if env.get("API_KEY_PEPPER"):
        key = mint_key("dev", ["generate", "batch", "schedule", "admin"], pepper=env["API_KEY_PEPPER"])
        print(f"development API key (admin): {key}", flush=True)  # noqa: T201
    return env


def main() -> int:
    """Start everything, wait for Ctrl-C or a child dying, then stop everything started."""
    env = _environment()
    children: list[subprocess.Popen[bytes]] = []
    for name, port_var, default_port, signature in FUNCTIONS:
        port = int(env.get(port_var, default_port))
        children.append(subprocess.Popen(function_command(name, port, signature), cwd=ROOT, env=env))
        print(f"{name}: http://127.0.0.1:{port}", flush=True)  # noqa: T201
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("a function exited; stopping the others", file=sys.stderr)  # noqa: T201
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    sys.exit(main())
