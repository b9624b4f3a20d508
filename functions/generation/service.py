"""The generation function's work, on typed models: create and read generations."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from shared.batches import Batch, BatchItem, NewBatch, create_batches, get_batch, split_items
from shared.config import get_settings
from shared.database import session_scope
from shared.exceptions import GenmediaError, QuotaExceededError, ServiceUnavailableError
from shared.generation import advance_video, run_generation
from shared.idempotency import release, replayed
from shared.jobs import Job, create_job, get_job, mark_failed, new_id
from shared.media.capabilities import resolve, resolve_all
from shared.media.request import GenerationRequest
from shared.outbox import publish_pending
from shared.quotas.admission import QuotaShareSpentError, admit_sync, count_sync_refusal, record_sync_refusal
from shared.quotas.queue import dispatch_waiting
from shared.results.cancel import cancel_batch_items, cancel_job
from shared.results.lists import (
    BatchListQuery,
    BatchPage,
    GenerationListQuery,
    GenerationPage,
    list_batches,
    list_jobs,
)
from shared.results.results_file import try_write_results
from shared.uploads.references import resolve_inputs
from shared.webhooks.api import attach_status, check_webhook_url
from shared.webhooks.deliveries import Subscription, subscribe

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

SCOPE_GENERATIONS = "generations"
_log = logging.getLogger("genmedia.generation")


def create_generation(
    request: GenerationRequest, *, owner_id: str, idempotency_key: str | None, digest: str,
    webhook_url: str | None = None,
) -> tuple[Job, bool]:
    """Record and run one generation; returns the job and whether this call created it."""
    [resolved] = resolve_inputs([("", resolve(request))], owner_id=owner_id)
    check_webhook_url(webhook_url)
    job_id, model = new_id("gen"), str(resolved.model)
    try:
        with session_scope() as session:
            earlier = replayed(session, owner_id=owner_id, scope=SCOPE_GENERATIONS, key=idempotency_key,
                               digest=digest, resource_id=job_id)
            if earlier is not None:
                return _with_webhook(session, Job.from_row(get_job(session, earlier, owner_id=owner_id))), False
            create_job(session, resolved, owner_id=owner_id, job_id=job_id, status="running",
                       lease_seconds=get_settings().job_lease_seconds)
            if webhook_url:
                subscribe(session, [Subscription(owner_id, "generation", job_id, webhook_url)])
            # Last: the budget row is locked until this commit only. Refused: nothing is kept.
            admit_sync(session, model)
    except QuotaShareSpentError:
        count_sync_refusal(model)
        raise
    try:
        job = run_generation(job_id, resolved)
        if webhook_url:
            with session_scope() as session:
                _with_webhook(session, job)
        return job, True
    except Exception as exc:
        if isinstance(exc, QuotaExceededError):
            record_sync_refusal(model)  # Vertex AI refused below our budget: it adapts
        # Transient (or a bug): the job is recorded as failed, never left running, and the key is
        # released so a retry runs again.
        err = exc if isinstance(exc, GenmediaError) else GenmediaError(detail=type(exc).__name__)
        with session_scope() as session:
            mark_failed(session, job_id, err)
            release(session, resource_id=job_id)
        raise


def _with_webhook(session: Session, job: Job) -> Job:
    attach_status(session, [job])
    return job


def read_generation(job_id: str, *, owner_id: str) -> Job:
    """The job; a running video is polled first when its next poll is due."""
    with session_scope() as session:
        job = Job.from_row(get_job(session, job_id, owner_id=owner_id))
        if not (job.status == "running" and job.kind == "video"):
            return _with_webhook(session, job)
    advance_video(job_id)
    with session_scope() as session:
        return _with_webhook(session, Job.from_row(get_job(session, job_id, owner_id=owner_id)))


SCOPE_BATCHES = "batches"


class BatchesNotConfiguredError(ServiceUnavailableError):
    """PUBSUB_BATCH_TOPIC is not set on this function, so batches cannot be fanned out."""

    reason = "BATCHES_NOT_CONFIGURED"
    default_message = "batches are not available on this deployment"


def resolve_items(items: list[GenerationRequest], *, owner_id: str) -> list[GenerationRequest]:
    """Check every item against its model and resolve its inputs; one bad item rejects the batch,
    naming its index."""
    prefixes = [f"items[{index}]" for index in range(len(items))]
    resolved = resolve_all(list(zip(prefixes, items, strict=True)))
    return resolve_inputs(list(zip(prefixes, resolved, strict=True)), owner_id=owner_id)


def publish_outbox(topic: str) -> None:
    """Admit what the budgets allow and publish what is pending now; a failure leaves the rest for the
    next request, finished item or tick."""
    try:
        dispatch_waiting(topic)
        publish_pending()
    except GenmediaError as err:
        _log.warning("outbox not published now, will be later: %s", err)


def create_batch(
    items: list[BatchItem], *, owner_id: str, idempotency_key: str | None, digest: str,
    webhook_url: str | None = None,
) -> tuple[Batch, bool]:
    """Record a batch and its items, queue one message per item, publish; (batch, created)."""
    topic = get_settings().pubsub_batch_topic
    if not topic:
        raise BatchesNotConfiguredError()
    requests, custom_ids = split_items(items)
    resolved = resolve_items(requests, owner_id=owner_id)
    check_webhook_url(webhook_url)
    batch_id = new_id("bat")
    with session_scope() as session:
        earlier = replayed(session, owner_id=owner_id, scope=SCOPE_BATCHES, key=idempotency_key,
                           digest=digest, resource_id=batch_id)
        if earlier is not None:
            return _batch_view(session, earlier, owner_id), False
        create_batches(session, [NewBatch(batch_id, owner_id, resolved, webhook_url=webhook_url,
                                           custom_ids=custom_ids)], topic=topic)
    publish_outbox(topic)
    with session_scope() as session:
        return _batch_view(session, batch_id, owner_id), True


def _batch_view(session: Session, batch_id: str, owner_id: str) -> Batch:
    batch = get_batch(session, batch_id, owner_id=owner_id)
    attach_status(session, [batch])
    return batch


def read_batch(batch_id: str, *, owner_id: str) -> Batch:
    """The batch with its per-status counts and its webhook's state."""
    with session_scope() as session:
        return _batch_view(session, batch_id, owner_id)


def list_generations(query: GenerationListQuery, *, owner_id: str) -> GenerationPage:
    """A page of the caller's jobs, newest first."""
    with session_scope() as session:
        return list_jobs(session, query, owner_id=owner_id)


def list_batches_page(query: BatchListQuery, *, owner_id: str) -> BatchPage:
    """A page of the caller's batches, newest first."""
    with session_scope() as session:
        return list_batches(session, query, owner_id=owner_id)


def cancel_generation(job_id: str, *, owner_id: str) -> Job:
    """Cancel a job that has not started, or a running video; a finished one is returned unchanged."""
    with session_scope() as session:
        row = cancel_job(session, job_id, owner_id=owner_id)
        job, batch_id = Job.from_row(row), row.batch_id
    try_write_results(batch_id)
    return job


def cancel_batch(batch_id: str, *, owner_id: str) -> Batch:
    """Cancel every item not started and every running video; the batch after (its results file too)."""
    with session_scope() as session:
        cancel_batch_items(session, batch_id, owner_id=owner_id)
    try_write_results(batch_id)
    with session_scope() as session:
        return get_batch(session, batch_id, owner_id=owner_id)
