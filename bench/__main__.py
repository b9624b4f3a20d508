"""`make bench`: every benchmark, each line a ratio against the baseline run beside it."""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from pathlib import Path


def _database_url() -> str:
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    from devtools.local_postgres import LocalPostgres
    from devtools.migrate import upgrade_to_head

    server = LocalPostgres(Path(tempfile.gettempdir()) / f"genmedia-bench-{uuid.uuid4().hex[:8]}",
                           delete_on_exit=True)
    url = server.create_database("genmedia_bench")
    upgrade_to_head(url)
    return url


def main() -> int:
    """Run the benchmarks named on the command line, or all of them."""
    from bench import (
        bench_batch,
        bench_cold_start,
        bench_generation,
        bench_logging,
        bench_pacing,
        bench_request_overhead,
        bench_results,
        bench_tick,
        bench_uploads,
        bench_webhooks,
    )

    wanted = set(sys.argv[1:])
    # The functions refuse to start without a pepper; benchmarks mint no keys, any value will do.
    os.environ.setdefault("API_KEY_PEPPER", "bench-pepper-" + "0" * 40)
    os.environ.setdefault("GENERATION_BACKEND", "local")
    url = _database_url()
    os.environ["DATABASE_URL"] = url
    lines: list[str] = []
    if not wanted or "cold_start" in wanted:
        lines += bench_cold_start.main(url)
    if not wanted or "overhead" in wanted:
        lines += bench_request_overhead.main()
    if not wanted or "generation" in wanted:
        lines += bench_generation.main(url)
    if not wanted or "batch" in wanted:
        lines += bench_batch.main(url)
    if not wanted or "pacing" in wanted:
        lines += bench_pacing.main(url)
    if not wanted or "tick" in wanted:
        lines += bench_tick.main(url)
    if not wanted or "uploads" in wanted:
        lines += bench_uploads.main()
    if not wanted or "webhooks" in wanted:
        lines += bench_webhooks.main(url)
    if not wanted or "results" in wanted:
        lines += bench_results.main(url)
    if not wanted or "logging" in wanted:
        bench_logging.main([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
