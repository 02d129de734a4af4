"""Connections to the market-data PostgreSQL and idempotent schema setup."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

SCHEMA_SQL = Path(__file__).with_name("schema.sql")
# Serialises concurrent schema setup (parallel mapped tasks, every package's tables) without failing on races.
_SCHEMA_LOCK_KEY = 727_001


def connect(dsn: str) -> PgConnection:
    import psycopg2

    conn = psycopg2.connect(dsn, application_name="ibkr-airflow")
    conn.autocommit = False
    return conn


@contextmanager
def connection(dsn: str) -> Iterator[PgConnection]:
    conn = connect(dsn)
    try:
        yield conn
    finally:
        conn.close()


# CREATE [UNIQUE] INDEX IF NOT EXISTS name ON schema.table ...; (no semicolon inside an index statement)
_CREATE_INDEX = re.compile(r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+IF\s+NOT\s+EXISTS\s+(\w+)\s+ON\s+(\w+)\.\w+[^;]*;",
                           re.IGNORECASE)


def _guard_indexes(ddl: str) -> str:
    """Each ``CREATE INDEX IF NOT EXISTS`` run only when the index is missing: the statement locks its table (SHARE)
    even when there is nothing to do, so a task's schema check would wait for every open write to the table (a
    COPY of ten years of bars) and hold up the writes queued behind it."""
    def guard(m: re.Match[str]) -> str:
        return (f"DO $ddl$ BEGIN IF to_regclass('{m[2]}.{m[1]}') IS NULL THEN {m[0]} END IF; END $ddl$;")

    return _CREATE_INDEX.sub(guard, ddl)


def apply_ddl(conn: PgConnection, ddl: str) -> None:
    """Run idempotent DDL in one transaction under the project-wide schema lock (commits). Every package that
    owns tables (raw, quality, trading) goes through here, so concurrent first runs never race each other. On an
    existing schema it takes no lock that waits for other tasks' writes: its indexes are checked for first
    (``_guard_indexes``), and a column added later is checked for in its DO block (ALTER TABLE locks the table)."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
        cur.execute(_guard_indexes(ddl))


def ensure_schema(conn: PgConnection) -> None:
    apply_ddl(conn, SCHEMA_SQL.read_text())
