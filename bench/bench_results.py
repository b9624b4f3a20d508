"""Getting results back, three measurements, each against its baseline:

- a page of 100 jobs of a 1,000-item batch (`GET /v1/generations?batch_id=&page_size=100`, each output
  with a freshly minted link) against reading one job (`GET /v1/generations/{id}`), in process;
- writing the results file of a 1,000-item batch (lease, read, render, create-only atomic write, mark)
  against the same bytes from the same rows written by one plain loop;
- Google API calls (counted by the IAM/OAuth stand-in) to mint 100 download links, and per download.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.stats import interleave, median, report

ITEMS = 1000
BATCH = "bat_bench_results"


def _setup(url: str, media: Path) -> None:
    outputs = json.dumps([{"uri": (media / "images" / "x" / "0.png").as_uri(), "mime_type": "image/png"}])
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE batches, jobs CASCADE"))
        conn.execute(sa.text("INSERT INTO batches (id, owner_id, total) VALUES (:b, 'benchowner0', :n)"),
                     {"b": BATCH, "n": ITEMS})
        conn.execute(sa.text(
            "INSERT INTO jobs (id, owner_id, kind, model, status, request, outputs, batch_id, item_index, custom_id)"
            " SELECT :b || '_' || lpad(i::text, 4, '0'), 'benchowner0', 'image', 'imagen-4.0-generate-001',"
            " 'succeeded', '{\"kind\": \"image\", \"prompt\": \"a lighthouse\"}', CAST(:o AS jsonb), :b, i,"
            " 'row-' || i FROM generate_series(0, :n - 1) i"), {"b": BATCH, "o": outputs, "n": ITEMS})
    engine.dispose()


def _client(key: str) -> Any:
    import functions_framework

    root = Path(__file__).resolve().parent.parent
    app = functions_framework.create_app(target="generation", source=str(root / "functions/generation/main.py"))
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client


def _timed(call: Any, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - started) / n


def list_against_get(url: str, media: Path, rounds: int = 7, n: int = 20) -> str:
    """A 100-job page of the batch against one job, both through the route, in process."""
    from shared import apikeys
    from shared.database import session_scope

    with session_scope() as session:
        key, record = apikeys.create_key(session, "bench", ["generate", "batch"],
                                         pepper=os.environ["API_KEY_PEPPER"])
        session.execute(sa.text("UPDATE jobs SET owner_id = :o"), {"o": record.id})
    client = _client(key)

    def page() -> None:
        response = client.get(f"/v1/generations?batch_id={BATCH}&page_size=100")
        assert response.status_code == 200 and len(response.get_json()["generations"]) == 100

    def one() -> None:
        assert client.get(f"/v1/generations/{BATCH}_0007").status_code == 200

    page(), one()
    runs = interleave(rounds, page=lambda: _timed(page, n), one=lambda: _timed(one, n))
    return report("GET /v1/generations?batch_id&page_size=100", median(runs["page"]) * 1000,
                  "GET /v1/generations/{id}", median(runs["one"]) * 1000, "ms", "<= 3x")


def _plain_loop(url: str, path: Path) -> None:
    from shared.database import get_engine  # the same pooled engine as ours: only the work differs

    with get_engine().connect() as conn:
        rows = conn.execute(sa.text("SELECT custom_id, id, status, outputs, error FROM jobs WHERE batch_id = :b"
                                    " ORDER BY item_index"), {"b": BATCH}).all()
    with path.open("w") as handle:
        for c, i, s, o, e in rows:
            handle.write(json.dumps({"custom_id": c, "id": i, "status": s, "outputs": o, "error": e},
                                    separators=(",", ":"), ensure_ascii=False) + "\n")


def results_file(url: str, media: Path, rounds: int = 9) -> str:
    """write_results_if_finished on a finished 1,000-item batch against the same bytes by one plain loop."""
    from shared.results.results_file import write_results_if_finished

    written = media / "results" / f"{BATCH}.jsonl"
    plain = media / "plain.jsonl"
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)

    def ours() -> float:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE batches SET results_written_at = NULL, results_uri = NULL"))
        written.unlink(missing_ok=True)
        started = time.perf_counter()
        assert write_results_if_finished(BATCH)
        return time.perf_counter() - started

    def baseline() -> float:
        started = time.perf_counter()
        _plain_loop(url, plain)
        return time.perf_counter() - started

    ours(), baseline()
    runs = interleave(rounds, ours=ours, baseline=baseline)
    engine.dispose()
    assert written.read_bytes() == plain.read_bytes(), "both write the same bytes"
    return report("results file of a 1,000-item batch", median(runs["ours"]) * 1000,
                  "the same bytes by one plain loop", median(runs["baseline"]) * 1000, "ms", "<= 1.5x")


def google_calls(url: str, tmp: Path, downloads: int = 10) -> list[str]:
    """Calls the IAM/OAuth stand-in receives while minting 100 links, then per download followed."""
    from shared import config
    from shared.results.downloads import mint_url
    from tests.standin import gcs_server, iam_server

    gcs, gcs_http = gcs_server.start()
    iam, iam_http, env = iam_server.start(tmp)
    saved = dict(os.environ)
    os.environ.update({**env, **iam_server.env_for_signing(), "GENERATION_BACKEND": "vertex",
                       "OUTPUT_BUCKET": "genmedia-bench", "STORAGE_EMULATOR_HOST": gcs.url})
    config.get_settings.cache_clear()
    try:
        client = _client("unused")
        with client.application.test_request_context():
            links = [mint_url(f"gs://genmedia-bench/images/gen_{i}/0.png") for i in range(100)]
        minted = len(iam.calls)
        assert client.get(links[-1].removeprefix("http://localhost")).status_code == 302  # type: ignore[union-attr]
        warm = len(iam.calls)  # the first download also fetched the runtime's token, reused for an hour
        iam.reset()
        for link in links[:downloads]:
            assert link is not None
            assert client.get(link.removeprefix("http://localhost")).status_code == 302
        per_download = len(iam.calls) / downloads
        signblob = iam.count("signBlob") / downloads
        tokens = iam.count("token")
        assert warm == 2, "the first download: one token fetch and one signBlob"
    finally:
        os.environ.clear()
        os.environ.update(saved)
        config.get_settings.cache_clear()
        iam_http.stop()
        gcs_http.stop()
    return [report("Google API calls to mint 100 download links", float(minted), "one per link", 100.0, "calls",
                   "0"),
            report(f"Google API calls per download ({downloads} downloads: {signblob:.2f} signBlob each, {tokens} "
                   "token fetch in all, reused for an hour)", per_download, "one signBlob", 1.0, "calls", "<= 1")]


def main(url: str) -> list[str]:
    """All three measurements."""
    with tempfile.TemporaryDirectory() as folder:
        media = Path(folder) / "media"
        os.environ["LOCAL_DATA_DIR"] = str(media)
        os.environ.setdefault("RATE_LIMIT_READ", "0")
        os.environ.setdefault("PUBSUB_BATCH_TOPIC", "batches")
        from shared import config

        config.get_settings.cache_clear()
        _setup(url, media)
        lines = [list_against_get(url, media), results_file(url, media)]
        lines += google_calls(url, Path(folder))
    return lines
