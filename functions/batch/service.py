"""One batch item per message: at most one effect however often it is delivered.

Pub/Sub delivers at least once, in any order, sometimes concurrently. The item's row decides: a lease
lets one delivery work at a time, final statuses make duplicates no-ops, and the attempt counter
(ours, since direct push carries no `deliveryAttempt`) bounds retries of transient failures.

Items are published once admitted to their model's Vertex AI budget (shared.quotas): a delivery
waits for its item's slot, a 429 sends the item back to the queue (acked, no attempt spent), and each
finished item admits the next ones, so the queue drains at the pace of the budget.
"""

from __future__ import annotations

import logging
import time

import pydantic

from functions.batch.models import BatchItemMessage
from shared.breaker import CircuitOpenError
from shared.config import get_settings
from shared.database import session_scope
from shared.events import MalformedMessageError, PubSubMessage
from shared.exceptions import GenmediaError, QuotaExceededError
from shared.generation import fail_job, run_generation, warm_backend
from shared.jobs import JobError, claim_item, release_item, shown_id
from shared.media.upstream import quota_refusals_returned
from shared.outbox import publish_pending
from shared.quotas.admission import Slot, defer_item, read_slot, take_slot
from shared.quotas.budget import MAX_HORIZON
from shared.quotas.queue import dispatch
from shared.results.results_file import try_write_results

_log = logging.getLogger("genmedia.batch")


def parse_item(message: PubSubMessage) -> BatchItemMessage:
    """The item payload, or MalformedMessageError (acked: a retry cannot fix it)."""
    data = message.json()
    try:
        return BatchItemMessage.model_validate(data)
    except (pydantic.ValidationError, RecursionError, ValueError, TypeError):
        # Parsing failures of any kind are permanent: acknowledged with an ERROR line, never looped.
        raise MalformedMessageError(detail="data is not a batch item payload") from None


def process_item(message: PubSubMessage) -> None:
    """Run the item's generation once; raise only what Pub/Sub should redeliver."""
    item = parse_item(message)
    settings = get_settings()
    # The lease covers the wait for the slot too (at most the pacing horizon).
    lease = settings.job_lease_seconds + MAX_HORIZON
    warm_backend()  # before the slot is read: a cold client takes seconds, and the call must leave on time
    slot: Slot | None = None
    with session_scope() as session:
        # The batch too: a message must not run a job of another batch (or a single generation).
        state, attempts = claim_item(session, item.item_id, batch_id=item.batch_id, lease_seconds=lease)
        if state == "claimed":
            slot = read_slot(session, item.item_id)
    attempts = max(attempts, message.delivery_attempt or 0)
    if state == "missing":
        raise MalformedMessageError(f"item {shown_id(item.item_id)} of batch {shown_id(item.batch_id)} does not exist")
    if state == "finished":
        _log.info("duplicate delivery acknowledged", extra={"item_id": item.item_id})
        return
    if state == "busy":
        # Acked, not nacked: a nack would spend a Pub/Sub delivery attempt, and enough of them
        # dead-letter the message. If the holder dies, the tick requeues the item when its lease ends.
        _log.info("delivery of an item in progress acknowledged", extra={"item_id": item.item_id})
        return
    assert slot is not None
    wait = slot.wait if slot.wait is not None else take_slot(item.item_id, slot.model)
    if wait is None:
        _log.info("item not admitted yet, left in the queue", extra={"item_id": item.item_id})
        return
    try:
        time.sleep(wait)
        _generate(item.item_id, slot.model, attempts, item.batch_id)
    finally:
        if slot.paced:
            refill(slot.model)


def _generate(item_id: str, model: str, attempts: int, batch_id: str) -> None:
    settings = get_settings()
    try:
        with quota_refusals_returned():
            job = run_generation(item_id)
    except QuotaExceededError:
        # Not the item's failure and not an attempt: back to the queue for a later slot, acked.
        defer_item(item_id, model)
        _log.info("vertex quota refused the item, deferred", extra={"item_id": item_id, "model": model})
        return
    except Exception as exc:
        # A bug of ours (or a row this version cannot read) is retried like an outage, and bounded alike.
        err = exc if isinstance(exc, GenmediaError) else GenmediaError(detail=type(exc).__name__)
        if attempts >= settings.max_delivery_attempts and not isinstance(err, CircuitOpenError):
            _log.error("item failed after %d attempts: %s", attempts, err, extra={"item_id": item_id})
            message = f"{err.message} (gave up after {attempts} attempts)"
            fail_job(item_id, JobError(reason=err.reason, message=message))
            try_write_results(batch_id)
            return
        with session_scope() as session:
            # An open breaker is Vertex AI being down, not this item failing: do not spend an attempt.
            release_item(session, item_id, refund_attempt=isinstance(err, CircuitOpenError))
        raise
    _log.info("item processed", extra={"item_id": item_id, "status": job.status, "attempts": attempts})
    if job.status not in ("queued", "running"):
        try_write_results(batch_id)  # the last item to finish writes the batch's results file


def refill(model: str) -> None:
    """Admit and publish the model's next queued items now that this one has used its slot."""
    topic = get_settings().pubsub_batch_topic
    if not topic:
        return  # the tick dispatches instead
    try:
        if dispatch(model, topic):
            publish_pending()
    except GenmediaError as err:
        _log.warning("next items not admitted now, the tick will: %s", err)
