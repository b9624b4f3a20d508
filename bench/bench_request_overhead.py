"""Per-request overhead of our decorator + logging on a route without database, vs the bare function."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from bench.stats import interleave, median, report

ROOT = Path(__file__).resolve().parent.parent


def _client(target: str, source: Path) -> Any:
    import functions_framework

    return functions_framework.create_app(target=target, source=str(source), signature_type="http").test_client()


def _per_request(client: Any, path: str, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        response = client.get(path)
        assert response.status_code == 200
    return (time.perf_counter() - started) / n * 1e6


def main(rounds: int = 15, n: int = 400) -> list[str]:
    """Time GET /healthz through our stack and the bare hello function, in one process."""
    os.environ.setdefault("GENERATION_BACKEND", "local")
    os.environ["LOG_LEVEL"] = "INFO"
    ours = _client("generation", ROOT / "functions" / "generation" / "main.py")
    from shared.logging import configure_logging

    with open(os.devnull, "w") as null:  # our access line is rendered in full, then discarded
        configure_logging(stream=null)
        bare = _client("hello", ROOT / "bench" / "baselines" / "hello" / "main.py")
        _per_request(ours, "/healthz", 200), _per_request(bare, "/", 200)
        results = interleave(rounds, ours=lambda: _per_request(ours, "/healthz", n),
                             bare=lambda: _per_request(bare, "/", n))
    return [report("per-request overhead", median(results["ours"]), "bare functions-framework hello",
                   median(results["bare"]), "us/request", "<= 1.15x")]
