"""The caller's generations and batches, newest first, a page at a time (AIP-158, keyset-paged).

Each query walks one index in (created_at DESC, id DESC) order from where the previous page stopped,
so a page costs the same on page 1 and page 500, and rows inserted meanwhile never shift a page (as
OFFSET would). Migration 0013 adds one index per filter; a test reads the plans.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from shared.batches import Batch, BatchCounts, item_counts, to_batch
from shared.jobs import Job, Status
from shared.results.paging import Cursor, decode_page_token, encode_page_token
from shared.tables import BatchRow, JobRow

__all__ = ["BatchListQuery", "BatchPage", "GenerationListQuery", "GenerationPage", "list_batches", "list_jobs"]

_ID = r"^[A-Za-z0-9_-]{1,128}$"


class _PageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    page_size: int = Field(default=20, ge=1, le=100, description="1-100 (default 20)")
    page_token: str | None = Field(default=None, max_length=400,
                                   description="`next_page_token` of the previous page (empty: the first page)")

    def binding(self) -> str:
        """What a page token is valid for: this list and its filters (never the page size)."""
        raise NotImplementedError


class GenerationListQuery(_PageQuery):
    """`GET /v1/generations`: the caller's jobs, optionally of one batch or schedule, or in one status."""

    batch_id: str | None = Field(default=None, pattern=_ID)
    schedule_id: str | None = Field(default=None, pattern=_ID)
    status: Status | None = None

    def binding(self) -> str:
        return f"generations|{self.batch_id or ''}|{self.schedule_id or ''}|{self.status or ''}"


class BatchListQuery(_PageQuery):
    """`GET /v1/batches`: the caller's batches."""

    def binding(self) -> str:
        return "batches"


class GenerationPage(BaseModel):
    """One page of jobs, newest first; `next_page_token` is absent on the last page."""

    generations: list[Job]
    next_page_token: str | None = None


class BatchPage(BaseModel):
    """One page of batches, newest first; `next_page_token` is absent on the last page."""

    batches: list[Batch]
    next_page_token: str | None = None


def _page(session: Session, table: Any, statement: Any, query: _PageQuery, owner_id: str,
          ) -> tuple[list[Any], str | None]:
    """One page of `statement` after the query's token, and the token of the next page (None: last)."""
    if query.page_token:
        after = decode_page_token(query.page_token, owner_id=owner_id, binding=query.binding())
        statement = statement.where(tuple_(table.created_at, table.id) < tuple_(after.created_at, after.id))
    statement = statement.order_by(table.created_at.desc(), table.id.desc()).limit(query.page_size + 1)
    rows = list(session.execute(statement).scalars().all())
    page = rows[:query.page_size]
    token = None
    if len(rows) > query.page_size:
        token = encode_page_token(Cursor(page[-1].created_at, page[-1].id), owner_id=owner_id,
                                  binding=query.binding())
    return page, token


def jobs_statement(query: GenerationListQuery, owner_id: str) -> Any:
    """The SELECT a page of jobs starts from (tests read its plan)."""
    statement = select(JobRow).where(JobRow.owner_id == owner_id)
    if query.batch_id is not None:
        statement = statement.where(JobRow.batch_id == query.batch_id)
    if query.schedule_id is not None:
        statement = statement.where(JobRow.schedule_id == query.schedule_id)
    if query.status is not None:
        statement = statement.where(JobRow.status == query.status)
    return statement


def list_jobs(session: Session, query: GenerationListQuery, *, owner_id: str) -> GenerationPage:
    """A page of the owner's jobs matching the query's filters."""
    rows, token = _page(session, JobRow, jobs_statement(query, owner_id), query, owner_id)
    return GenerationPage(generations=[Job.from_row(row) for row in rows], next_page_token=token)


def list_batches(session: Session, query: BatchListQuery, *, owner_id: str) -> BatchPage:
    """A page of the owner's batches, each with its counts (one grouped query for the page)."""
    statement = select(BatchRow).where(BatchRow.owner_id == owner_id)
    rows, token = _page(session, BatchRow, statement, query, owner_id)
    counts = item_counts(session, [row.id for row in rows])
    batches = [to_batch(row, *counts.get(row.id, (BatchCounts(), None))) for row in rows]
    return BatchPage(batches=batches, next_page_token=token)
