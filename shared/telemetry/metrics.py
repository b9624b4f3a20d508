"""Metric facts as structured log fields, the serverless way: log-based metrics count them.

Like Powertools' EMF lines, with no SDK and no network at run time: each fact is one log line whose
`metric` field holds its name, labels and value, and `infra/modules/observability` defines one
log-based metric per name, filtered on `jsonPayload.metric.name`. The names below are the contract
between this module and the Terraform; a test checks that every field a metric's filter or extractor
names is carried by real lines.
"""

from __future__ import annotations

import logging

__all__ = [
    "DB_CHECKOUT_WAIT",
    "DB_POOL_EXHAUSTED",
    "JOB_FINISHED",
    "TICK_FINISHED",
    "VERTEX_DEFERRED",
    "VERTEX_QUOTA_REFUSED",
    "WEBHOOK_FAILED",
    "record",
]

JOB_FINISHED = "job_finished"  # labels model, kind, status; value: seconds from creation to the end
VERTEX_QUOTA_REFUSED = "vertex_quota_refused"  # labels model; one per 429 from Vertex AI
VERTEX_DEFERRED = "vertex_deferred"  # labels model; value: calls put off to a later window, per window
WEBHOOK_FAILED = "webhook_failed"  # labels event_type, outcome (retry or failed), reason; one per failed attempt
DB_POOL_EXHAUSTED = "db_pool_exhausted"  # one per checkout that waited DB_POOL_TIMEOUT in vain
DB_CHECKOUT_WAIT = "db_checkout_wait"  # value: seconds a checkout waited, when noticeably long
TICK_FINISHED = "tick_finished"  # value: seconds the tick took; labels fired (schedules fired)

_log = logging.getLogger("genmedia.metrics")

Label = str | int | float | bool | None


def record(name: str, /, value: float | None = None, **labels: Label) -> None:
    """Log one fact of metric `name`: its labels and, for a distribution, its `value`."""
    fact: dict[str, str | int | float | bool] = {"name": name}
    fact.update({key: label for key, label in labels.items() if label is not None})
    if value is not None:
        fact["value"] = round(value, 6)
    _log.info("metric %s", name, extra={"metric": fact})
