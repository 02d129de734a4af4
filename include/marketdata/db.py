"""Connections to the market-data PostgreSQL and idempotent schema setup."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


_CREATE_TABLE = re.compile(r"CREATE\s+(?:UNLOGGED\s+)?TABLE\s+IF\s+NOT\s+EXISTS\s+(\w+\.\w+)", re.IGNORECASE)
# What a DDL may hold to be recognised as set up from its marker: schemas, tables, indexes, DO-block migrations.
_KNOWN_STATEMENT = re.compile(r"(CREATE\s+(SCHEMA|(UNLOGGED\s+)?TABLE|(UNIQUE\s+)?INDEX)\s+IF\s+NOT\s+EXISTS|DO)\b",
                              re.IGNORECASE)
_MARKERS_DDL = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.applied_ddl (
    ddl_sha     text PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass(frozen=True)
class _Plan:
    sql: str  # the DDL with its indexes guarded
    sha: str
    relations: tuple[str, ...] | None  # its tables and indexes; None: it holds more (functions, seed rows)


@functools.lru_cache(maxsize=32)
def _plan(ddl: str) -> _Plan:
    bare = re.sub(r"\$(\w*)\$.*?\$\1\$", "$$", re.sub(r"--[^\n]*", "", ddl), flags=re.DOTALL)
    known = all(_KNOWN_STATEMENT.match(stmt.strip()) for stmt in bare.split(";") if stmt.strip())
    relations = (*_CREATE_TABLE.findall(ddl), *(f"{m[2]}.{m[1]}" for m in _CREATE_INDEX.finditer(ddl)))
    return _Plan(_guard_indexes(ddl), hashlib.sha256(ddl.encode()).hexdigest(), relations if known else None)


def _already_applied(conn: PgConnection, plan: _Plan) -> bool:
    """This exact DDL ran here before and every table and index it creates is still there: one lookup, no lock."""
    import psycopg2

    if plan.relations is None:
        return False
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT to_regclass('ops.applied_ddl') IS NOT NULL"
                        " AND NOT EXISTS (SELECT 1 FROM unnest(%s::text[]) r WHERE to_regclass(r) IS NULL)",
                        (list(plan.relations),))
            if not cur.fetchone()[0]:
                return False
            cur.execute("SELECT EXISTS (SELECT 1 FROM ops.applied_ddl WHERE ddl_sha = %s)", (plan.sha,))
            return bool(cur.fetchone()[0])
    except (psycopg2.errors.UndefinedTable, psycopg2.errors.InvalidSchemaName):  # dropped in between
        return False


def apply_ddl(conn: PgConnection, ddl: str) -> None:
    """Run idempotent DDL in one transaction under the project-wide schema lock (commits). Every package that
    owns tables (raw, quality, trading) goes through here, so concurrent first runs never race each other.

    Tasks call it at their start, many at once, so on a schema already set up it neither runs the DDL nor takes a
    lock: a DDL of schemas, tables, indexes and DO-block migrations is recorded in ``ops.applied_ddl`` (by its
    SHA-256) once it ran, and skipped while that record and all its tables and indexes exist (a dropped table or
    index, or a changed DDL, runs it again; a DDL holding anything else always runs). When it runs, it still takes
    no lock that waits for other tasks' writes: its indexes are checked for first (``_guard_indexes``), and a column
    added later is checked for in its DO block (ALTER TABLE locks the table)."""
    plan = _plan(ddl)
    if _already_applied(conn, plan):
        return
    with conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
        cur.execute(plan.sql)
        if plan.relations is not None:
            cur.execute(_MARKERS_DDL)
            cur.execute("INSERT INTO ops.applied_ddl (ddl_sha) VALUES (%s) ON CONFLICT DO NOTHING", (plan.sha,))


def ensure_schema(conn: PgConnection) -> None:
    apply_ddl(conn, SCHEMA_SQL.read_text())
