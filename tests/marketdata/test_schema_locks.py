"""Every package's schema setup (``db.apply_ddl``) runs at the start of tasks that run side by side: on an existing
schema it must not take a lock that waits for other tasks' open writes (CREATE INDEX IF NOT EXISTS and ALTER TABLE
... ADD COLUMN IF NOT EXISTS lock their table even when there is nothing to do)."""

from __future__ import annotations

import importlib

import psycopg2
import pytest

from include.marketdata import db

DDL_SOURCES = [
    ("include.marketdata.db", "SCHEMA_SQL"),
    ("include.quality.verdicts", "SCHEMA_SQL"),
    ("include.portfolio.loaders", "SCHEMA_SQL"),
    ("include.execution.ledger", "SCHEMA_SQL"),
    ("include.gateway.store", "DDL"),
    ("include.risk.protections.live", "DDL"),
    ("include.risk.state_store", "DDL"),
    ("include.alerts.store", "DDL"),
    ("include.ibkr.pacing_ledger", "DDL"),
]


def _ddl(module: str, name: str) -> str:
    value = getattr(importlib.import_module(module), name)
    return value if isinstance(value, str) else value.read_text()


@pytest.mark.parametrize(("module", "name"), DDL_SOURCES, ids=[m.removeprefix("include.") for m, _ in DDL_SOURCES])
def test_schema_setup_does_not_wait_for_open_writes(clean_db, module, name):
    with db.connection(clean_db) as conn:
        for source in DDL_SOURCES:  # an existing schema: every package's tables (some reference others')
            db.apply_ddl(conn, _ddl(*source))
    writer = psycopg2.connect(clean_db)
    try:
        with writer.cursor() as cur:  # another task's open writes on every table, left uncommitted
            cur.execute("SELECT format('%I.%I', schemaname, tablename) FROM pg_tables"
                        " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
            tables = [t for (t,) in cur.fetchall()]
            cur.execute(f"LOCK TABLE {', '.join(tables)} IN ROW EXCLUSIVE MODE")
        with db.connection(clean_db) as conn:
            with conn.cursor() as cur:
                cur.execute("SET lock_timeout = '2s'")
            conn.commit()
            db.apply_ddl(conn, _ddl(module, name))  # LockNotAvailable if it waited for the writer
    finally:
        writer.close()
