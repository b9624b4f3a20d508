"""The life of a job: run its generation, record the outcome, and advance running videos.

No transaction is ever held across a call to Vertex AI: each step reads or writes in its own short
transaction, and the guarded transitions in `shared.jobs` make every step safe to repeat.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from shared.breaker import breaker_for, configure_breakers
from shared.config import get_settings
from shared.database import session_scope
from shared.exceptions import GenmediaError
from shared.jobs import (
    ACTIVE,
    Job,
    JobError,
    claim_due_videos,
    claim_video_poll,
    get_job,
    mark_failed,
    mark_running,
    mark_succeeded,
)
from shared.media.request import GenerationRequest

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from shared.media.backends import MediaBackend
    from shared.tables import JobRow

_log = logging.getLogger("genmedia.generation")
_breakers_configured = False
T = TypeVar("T")


def _backend() -> MediaBackend:
    from shared.media.backends import get_backend

    return get_backend(get_settings())


def _guarded(breaker_name: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call Vertex AI through the model's circuit breaker (configured from settings once)."""
    global _breakers_configured
    if not _breakers_configured:
        settings = get_settings()
        configure_breakers(settings.breaker_failure_threshold, settings.breaker_reset_timeout_seconds)
        _breakers_configured = True
    return breaker_for(breaker_name).call(call, *args, **kwargs)


def warm_backend() -> None:
    """Build the backend and its clients before waiting for a call slot (a cold start takes seconds)."""
    _backend().warm()


def run_generation(job_id: str, request: GenerationRequest | None = None) -> Job:
    """Generate an image to the end, or start a video's operation; returns the job after.

    Permanent failures are recorded on the job. Retryable ones (quota, outage) are raised with the
    job untouched, so the caller decides: answer 429/503, or let Pub/Sub redeliver. A caller that
    has just created the job passes its request and saves reading it back.
    """
    if request is None:
        with session_scope() as session:
            row = get_job(session, job_id)
            if row.status not in ACTIVE:
                return Job.from_row(row)
            request = GenerationRequest.model_validate(row.request)
    record = _generate(job_id, request)
    with session_scope() as session:
        row = record(session) or get_job(session, job_id)  # None: it had already finished
        return Job.from_row(row)


def _generate(job_id: str, request: GenerationRequest) -> Callable[[Session], JobRow | None]:
    """Call Vertex AI (no transaction open) and return how to record the outcome."""
    model = request.model or ""
    try:
        if request.kind == "image":
            outputs = _guarded(model, _backend().generate_image, request, job_id=job_id)
            return lambda session: mark_succeeded(session, job_id, outputs)
        operation = _guarded(model, _backend().start_video, request, job_id=job_id)
        poll_after = timedelta(seconds=get_settings().video_poll_interval_seconds)
        return lambda session: mark_running(session, job_id, operation_name=operation, poll_after=poll_after)
    except GenmediaError as err:
        if err.retryable:
            raise
        _log.info("generation failed: %s", err, extra={"job_id": job_id, "reason": err.reason})
        failure = err  # `err` is unbound when the except block ends; the lambda runs later
        return lambda session: mark_failed(session, job_id, failure)


def fail_job(job_id: str, err: GenmediaError | JobError) -> None:
    """Record a failure the caller gave up retrying (quota on a request, attempts exhausted)."""
    with session_scope() as session:
        mark_failed(session, job_id, err)


def _poll(job_id: str, operation: str, model: str) -> None:
    try:
        outputs = _guarded(model, _backend().poll_video, operation, model=model, job_id=job_id)
    except GenmediaError as err:
        if err.retryable:
            _log.warning("video poll failed, will retry: %s", err, extra={"job_id": job_id})
            return
        with session_scope() as session:
            mark_failed(session, job_id, err)
        return
    if outputs is not None:
        with session_scope() as session:
            mark_succeeded(session, job_id, outputs)


def advance_video(job_id: str) -> None:
    """Poll a running video once if it is due and nobody else is polling it."""
    settings = get_settings()
    with session_scope() as session:
        row = claim_video_poll(session, job_id, base=settings.video_poll_interval_seconds,
                               cap=settings.video_poll_max_interval_seconds)
        claimed = (row.operation_name, row.model) if row is not None and row.operation_name else None
    if claimed is not None:
        _poll(job_id, *claimed)


def advance_due_videos(limit: int = 50) -> int:
    """Poll every running video that is due (the scheduling tick); returns how many were polled."""
    settings = get_settings()
    with session_scope() as session:
        rows = claim_due_videos(session, limit=limit, base=settings.video_poll_interval_seconds,
                                cap=settings.video_poll_max_interval_seconds)
        due = [(r.id, r.operation_name, r.model) for r in rows if r.operation_name]
    for job_id, operation, model in due:
        _poll(job_id, operation, model)
    return len(due)
