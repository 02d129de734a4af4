"""Connections to the market-data PostgreSQL and idempotent schema setup."""

from __future__ import annotations

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


def apply_ddl(conn: PgConnection, ddl: str) -> None:
    """Run idempotent DDL in one transaction under the project-wide schema lock (commits). Every package that
    owns tables (raw, quality, trading) goes through here, so concurrent first runs never race each other."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
        cur.execute(ddl)


def ensure_schema(conn: PgConnection) -> None:
    apply_ddl(conn, SCHEMA_SQL.read_text())
