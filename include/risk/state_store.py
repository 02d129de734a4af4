"""Trading state (kill switch) in Postgres: ``trading.trading_state`` (one row, the current state) and
``trading.trading_state_history`` (every change: who, when, why). DDL is applied idempotently on every call:
the schema may have been dropped since (tests, a fresh database), so nothing is cached per process.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from include.marketdata.db import apply_ddl, connection
from include.risk.models import TradingState

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

# Serialises concurrent DDL: two sessions running CREATE SCHEMA IF NOT EXISTS at once can still collide on the
# catalog. Same key as include.execution.ledger (and marketdata.db), which creates the same ``trading`` schema.
DDL = """
CREATE SCHEMA IF NOT EXISTS trading;
CREATE TABLE IF NOT EXISTS trading.trading_state (
    id          smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    state       text NOT NULL CHECK (state IN ('ACTIVE', 'REDUCING', 'HALTED')),
    reason      text NOT NULL,
    changed_by  text NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS trading.trading_state_history (
    change_id       bigserial PRIMARY KEY,
    previous_state  text,
    state           text NOT NULL CHECK (state IN ('ACTIVE', 'REDUCING', 'HALTED')),
    reason          text NOT NULL,
    changed_by      text NOT NULL,
    changed_at      timestamptz NOT NULL DEFAULT now()
);
WITH seeded AS (
    INSERT INTO trading.trading_state (id, state, reason, changed_by)
    VALUES (1, 'ACTIVE', 'initial state (table created)', 'system')
    ON CONFLICT (id) DO NOTHING
    RETURNING state, reason, changed_by, changed_at
)
INSERT INTO trading.trading_state_history (previous_state, state, reason, changed_by, changed_at)
SELECT NULL, state, reason, changed_by, changed_at FROM seeded;
"""


class StateRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    state: TradingState
    reason: str
    changed_by: str
    changed_at: datetime
    previous_state: TradingState | None = None


def ensure_schema(conn: PgConnection) -> None:
    """Create the schema, tables and the initial ACTIVE row if missing (commits)."""
    apply_ddl(conn, DDL)


def read_state(dsn: str) -> StateRecord:
    """The current trading state (ACTIVE on a fresh database)."""
    with connection(dsn) as conn:
        ensure_schema(conn)
        with conn, conn.cursor() as cur:
            cur.execute("SELECT state, reason, changed_by, changed_at FROM trading.trading_state WHERE id = 1")
            state, reason, by, at = cur.fetchone()
    return StateRecord(state=state, reason=reason, changed_by=by, changed_at=at)


def change_state(dsn: str, state: TradingState | str, reason: str, changed_by: str) -> StateRecord:
    """Set the trading state and append the change to the history in one transaction."""
    new = TradingState(str(state).upper())
    if not reason or not reason.strip():
        raise ValueError("a reason is required to change the trading state")
    if not changed_by or not changed_by.strip():
        raise ValueError("changed_by is required (who changes the trading state)")
    with connection(dsn) as conn:
        ensure_schema(conn)
        with conn, conn.cursor() as cur:
            cur.execute("SELECT state FROM trading.trading_state WHERE id = 1 FOR UPDATE")
            (previous,) = cur.fetchone()
            cur.execute(
                "UPDATE trading.trading_state SET state = %s, reason = %s, changed_by = %s, changed_at = now()"
                " WHERE id = 1 RETURNING changed_at",
                (new.value, reason.strip(), changed_by.strip()),
            )
            (at,) = cur.fetchone()
            cur.execute(
                "INSERT INTO trading.trading_state_history (previous_state, state, reason, changed_by, changed_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                (previous, new.value, reason.strip(), changed_by.strip(), at),
            )
    return StateRecord(state=new, reason=reason.strip(), changed_by=changed_by.strip(), changed_at=at,
                       previous_state=previous)


def state_history(dsn: str, limit: int = 20) -> list[StateRecord]:
    """The latest ``limit`` changes, newest first."""
    with connection(dsn) as conn:
        ensure_schema(conn)
        with conn, conn.cursor() as cur:
            cur.execute(
                "SELECT state, reason, changed_by, changed_at, previous_state FROM trading.trading_state_history"
                " ORDER BY change_id DESC LIMIT %s",
                (limit,),
            )
            rows = cur.fetchall()
    return [StateRecord(state=s, reason=r, changed_by=b, changed_at=a, previous_state=p) for s, r, b, a, p in rows]
