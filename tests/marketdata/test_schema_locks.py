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


def _apply_with_lock_timeout(dsn: str, ddl: str, timeout: str = "1s") -> None:
    """apply_ddl on a fresh connection that gives up on any lock (LockNotAvailable) after ``timeout``."""
    with db.connection(dsn) as conn:
        with conn.cursor() as cur:
            cur.execute("SET lock_timeout = %s", (timeout,))
        conn.commit()
        db.apply_ddl(conn, ddl)


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
        _apply_with_lock_timeout(clean_db, _ddl(module, name), "2s")  # LockNotAvailable if it waited for the writer
    finally:
        writer.close()


def _hold_schema_lock(dsn: str):
    holder = psycopg2.connect(dsn)
    holder.autocommit = True
    with holder.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (db._SCHEMA_LOCK_KEY,))
    return holder


TABLE_V1 = """
CREATE SCHEMA IF NOT EXISTS ddl_probe;
CREATE TABLE IF NOT EXISTS ddl_probe.t (id int PRIMARY KEY);
CREATE INDEX IF NOT EXISTS t_id_idx ON ddl_probe.t (id);
"""
TABLE_V2 = TABLE_V1 + """
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'ddl_probe.t'::regclass AND attname = 'note') THEN
        ALTER TABLE ddl_probe.t ADD COLUMN note text;
    END IF;
END $$;
"""


def test_a_schema_already_set_up_is_recognised_without_the_schema_lock(clean_db):
    """The tasks' schema checks do not queue on the project-wide schema lock once the DDL ran; a changed DDL (a
    migration), a dropped table or a dropped index runs it again, under the lock."""
    _apply_with_lock_timeout(clean_db, TABLE_V1)
    holder = _hold_schema_lock(clean_db)
    try:
        _apply_with_lock_timeout(clean_db, TABLE_V1)  # recognised: no lock, no DDL
        with pytest.raises(psycopg2.errors.LockNotAvailable):
            _apply_with_lock_timeout(clean_db, TABLE_V2)  # changed: runs, so waits for the lock
    finally:
        holder.close()
    _apply_with_lock_timeout(clean_db, TABLE_V2)
    with psycopg2.connect(clean_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_attribute WHERE attrelid = 'ddl_probe.t'::regclass AND attname = 'note'")
        assert cur.fetchone()[0] == 1
        cur.execute("DROP INDEX ddl_probe.t_id_idx")
    _apply_with_lock_timeout(clean_db, TABLE_V2)
    with psycopg2.connect(clean_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('ddl_probe.t_id_idx') IS NOT NULL")
        assert cur.fetchone()[0]
        cur.execute("DROP TABLE ddl_probe.t")
    _apply_with_lock_timeout(clean_db, TABLE_V2)
    with psycopg2.connect(clean_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT note FROM ddl_probe.t")  # the table and its migrated column are back
        assert cur.fetchall() == []


def test_a_ddl_with_more_than_tables_and_indexes_always_runs(clean_db):
    """A function (the pacing ledger's) or seed rows (the trading state's) could be gone with every table still
    there: such a DDL runs every time."""
    from include.ibkr.pacing_ledger import DDL as PACING_DDL
    from include.risk.state_store import DDL as STATE_DDL

    for ddl in (PACING_DDL, STATE_DDL):
        _apply_with_lock_timeout(clean_db, ddl)
        holder = _hold_schema_lock(clean_db)
        try:
            with pytest.raises(psycopg2.errors.LockNotAvailable):
                _apply_with_lock_timeout(clean_db, ddl)
        finally:
            holder.close()
