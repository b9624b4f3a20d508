"""Baseline: a bare function that runs SELECT 1 through SQLAlchemy + pg8000 on the same database."""

import os

import functions_framework
import sqlalchemy

_engine = None


@functions_framework.http
def select1(request):  # type: ignore[no-untyped-def]
    global _engine
    if _engine is None:
        _engine = sqlalchemy.create_engine(os.environ["DATABASE_URL"], pool_size=1, max_overflow=0)
    with _engine.connect() as conn:
        conn.execute(sqlalchemy.text("SELECT 1"))
    return {"status": "ok"}
