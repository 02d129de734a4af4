"""The order-intent ledger in PostgreSQL (``trading.order_intents`` + ``trading.order_events``), its only reader
and writer: idempotent DDL, the submission lock, inserts before submission, status transitions that always leave
an event, and the reads risk and protections need (working orders, orders today, a strategy's fills)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.execution.errors import ConcurrentExecutionError
from include.execution.models import WORKING, IntentRecord, OrderPlan, RunContext
from include.marketdata.db import apply_ddl
from include.marketdata.db import connect as connect

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

SCHEMA_SQL = Path(__file__).with_name("schema.sql")
# The same key as include.marketdata.db: every schema DDL in the database is serialised, so two owners
# creating their schemas at once cannot race on pg_namespace.
_RUN_LOCK_SEED = 727_005  # seed of hashtextextended(): run locks live in their own key space
_COLUMNS = tuple(f.name for f in fields(IntentRecord))
_UPDATABLE = frozenset({"status", "broker_order_id", "broker_status", "filled_quantity", "avg_fill_price",
                        "last_error", "conid", "account_id"})


def ensure_schema(conn: PgConnection) -> None:
    """Create the trading schema and tables if missing; cheap enough to run on every call."""
    apply_ddl(conn, SCHEMA_SQL.read_text())


@contextmanager
def submission_lock(conn: PgConnection, mode: str, timeout_s: float = 300.0) -> Iterator[None]:
    """Session advisory lock per mode (= account): one process at a time records, re-checks and sends orders,
    so two runs (retries, clears, concurrent triggers, other strategies) never decide against the same working
    orders side by side. A killed process loses its connection and so its lock, which makes a retry possible."""
    import psycopg2

    key = f"execution:{mode}"
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT set_config('lock_timeout', %s, true)", (f"{int(timeout_s * 1000)}ms",))
            cur.execute("SELECT pg_advisory_lock(hashtextextended(%s, %s))", (key, _RUN_LOCK_SEED))
    except psycopg2.errors.LockNotAvailable:
        raise ConcurrentExecutionError(
            f"another process has been executing {mode} orders for more than {timeout_s:g} s (advisory lock held); "
            "retry when it has finished"
        ) from None
    try:
        yield
    finally:
        if not conn.closed:
            with conn, conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(hashtextextended(%s, %s))", (key, _RUN_LOCK_SEED))


def _number(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def _record(row: Sequence[Any]) -> IntentRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    for name in ("quantity", "limit_price", "ref_price", "filled_quantity", "avg_fill_price", "position_before",
                 "target_position"):
        values[name] = _number(values[name])
    return IntentRecord(**values)


def insert_intents(
    conn: PgConnection, run: RunContext, rows: Iterable[tuple[OrderPlan, str, str, dict[str, Any]]],
) -> set[str]:
    """Insert ``(plan, intent_id, status, extra columns)`` rows that do not exist yet, each with its first
    event, in ONE committed transaction; returns the ids actually inserted (existing ones are left alone)."""
    from psycopg2.extras import Json

    inserted: set[str] = set()
    with conn, conn.cursor() as cur:
        for plan, intent_id, status, extra in rows:
            cur.execute(
                """
                INSERT INTO trading.order_intents (intent_id, dag_id, run_id, try_number, strategy_id, symbol,
                    conid, side, quantity, order_type, tif, limit_price, ref_price, mode, account_id, status,
                    coid, last_error, mlflow_run_id, session_date, position_before, target_position, signal,
                    risk_decision, dq_verdict)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                        %s, %s, %s)
                ON CONFLICT (intent_id) DO NOTHING
                RETURNING intent_id
                """,
                (intent_id, run.dag_id, run.run_id, run.try_number, str(plan.strategy_id), plan.symbol,
                 extra.get("conid", plan.conid), plan.side, plan.quantity, plan.order_type, plan.tif,
                 plan.limit_price, plan.ref_price, run.mode, extra.get("account_id"), status, intent_id,
                 extra.get("last_error"), run.mlflow_run_id, plan.session_date, plan.position_before,
                 plan.target_position, Json(plan.signal), Json(plan.risk), Json(plan.dq)),
            )  # fmt: skip
            if cur.fetchone() is None:
                continue
            inserted.add(intent_id)
            cur.execute(
                "INSERT INTO trading.order_events (intent_id, kind, status, try_number, message)"
                " VALUES (%s, %s, %s, %s, %s)",
                (intent_id, "error" if extra.get("last_error") else "status", status, run.try_number,
                 extra.get("last_error") or "intent recorded"),
            )  # fmt: skip
    return inserted


def load_intents(
    conn: PgConnection, intent_ids: Sequence[str] | None = None, *, dag_id: str | None = None,
    run_id: str | None = None, statuses: Iterable[str] | None = None, mode: str | None = None,
) -> list[IntentRecord]:
    """Intents by id and/or run and/or status, oldest first."""
    where, args = [], []
    if intent_ids is not None:
        where.append("intent_id = ANY(%s)")
        args.append(list(intent_ids))
    for column, value in (("dag_id", dag_id), ("run_id", run_id), ("mode", mode)):
        if value is not None:
            where.append(f"{column} = %s")
            args.append(value)
    if statuses is not None:
        where.append("status = ANY(%s)")
        args.append(list(statuses))
    sql = f"SELECT {', '.join(_COLUMNS)} FROM trading.order_intents"
    sql += f" WHERE {' AND '.join(where)}" if where else ""
    with conn, conn.cursor() as cur:
        cur.execute(sql + " ORDER BY created_at, intent_id", args)
        return [_record(row) for row in cur.fetchall()]


def transition(
    conn: PgConnection, intent: IntentRecord, status: str, *, try_number: int | None, kind: str = "status",
    message: str | None = None, payload: Any = None, **changes: Any,
) -> IntentRecord:
    """Update the intent and append its event in one committed transaction (durable before the next call
    to the broker); returns the updated row."""
    from psycopg2.extras import Json

    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    changes["status"] = status
    sets = ", ".join(f"{name} = %s" for name in changes)
    with conn, conn.cursor() as cur:
        cur.execute(
            f"UPDATE trading.order_intents SET {sets}, updated_at = now() WHERE intent_id = %s"
            f" RETURNING {', '.join(_COLUMNS)}",
            [*changes.values(), intent.intent_id],
        )
        row = cur.fetchone()
        if row is None:
            raise LookupError(f"intent {intent.intent_id} is not in trading.order_intents")
        updated = _record(row)
        cur.execute(
            "INSERT INTO trading.order_events (intent_id, kind, status, previous_status, try_number,"
            " broker_status, filled_quantity, avg_price, message, payload)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (intent.intent_id, kind, status, intent.status, try_number, updated.broker_status,
             updated.filled_quantity, updated.avg_fill_price, message,
             Json(payload) if payload is not None else None),
        )  # fmt: skip
    return updated


def claim(
    conn: PgConnection, intent: IntentRecord, status: str, *, try_number: int | None, message: str,
    gate: Any = None,
) -> tuple[IntentRecord, str | None]:
    """Lock the intent's row, run ``gate(cur, intent)`` (the re-check right before submission) and move the row to
    ``status`` in ONE committed transaction, so what the gate read (e.g. the trading state, under FOR SHARE) is
    what holds when the claim commits. A refusal moves it to ``vetoed`` instead; returns (row, refusal or None)."""
    from include.execution.models import VETOED

    with conn, conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(_COLUMNS)} FROM trading.order_intents WHERE intent_id = %s FOR UPDATE",
                    (intent.intent_id,))
        row = cur.fetchone()
        if row is None:
            raise LookupError(f"intent {intent.intent_id} is not in trading.order_intents")
        current = _record(row)
        reason = gate(cur, current) if gate is not None else None
        new_status, note = (VETOED, f"vetoed at submission: {reason}") if reason else (status, message)
        cur.execute(
            f"UPDATE trading.order_intents SET status = %s, last_error = %s, updated_at = now()"
            f" WHERE intent_id = %s RETURNING {', '.join(_COLUMNS)}",
            (new_status, reason if reason else current.last_error, intent.intent_id),
        )
        updated = _record(cur.fetchone())
        cur.execute(
            "INSERT INTO trading.order_events (intent_id, kind, status, previous_status, try_number, message)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (intent.intent_id, "error" if reason else "status", new_status, current.status, try_number, note),
        )  # fmt: skip
    return updated, reason


def record_execution(
    conn: PgConnection, intent: IntentRecord, execution_id: str, quantity: float, price: float,
    payload: dict[str, Any],
) -> bool:
    """A fill event per broker execution (deduplicated by execution id); True if it was new."""
    from psycopg2.extras import Json

    with conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO trading.order_events (intent_id, kind, status, filled_quantity, avg_price, execution_id,"
            " message, payload) VALUES (%s, 'fill', %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (intent_id, execution_id) WHERE execution_id IS NOT NULL DO NOTHING RETURNING event_id",
            (intent.intent_id, intent.status, quantity, price, execution_id,
             f"execution {quantity:g} @ {price:g}", Json(payload)),
        )  # fmt: skip
        return cur.fetchone() is not None


def load_events(conn: PgConnection, intent_id: str) -> list[dict[str, Any]]:
    """The intent's events, oldest first (for tests, MLflow artifacts and audits)."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT event_id, event_at, kind, status, previous_status, try_number, broker_status, filled_quantity,"
            " avg_price, execution_id, message, payload FROM trading.order_events WHERE intent_id = %s"
            " ORDER BY event_id",
            (intent_id,),
        )
        names = [d.name for d in cur.description]
        return [{k: _number(v) for k, v in zip(names, row, strict=True)} for row in cur.fetchall()]


@dataclass(frozen=True)
class StrategyFill:
    """One fill of a strategy in a mode (dry_run: a simulated intent at its limit price, when it was recorded)."""

    symbol: str
    side: str
    quantity: float
    price: float
    at: datetime


_FILLS_SQL = """
SELECT i.symbol, i.side, e.filled_quantity, e.avg_price, e.event_at
FROM trading.order_events e JOIN trading.order_intents i USING (intent_id)
WHERE i.strategy_id = %(strategy)s AND i.mode = %(mode)s AND e.kind = 'fill'
  AND e.filled_quantity > 0 AND e.avg_price > 0
UNION ALL
SELECT symbol, side, quantity, coalesce(limit_price, ref_price), created_at
FROM trading.order_intents
WHERE strategy_id = %(strategy)s AND mode = %(mode)s AND status = 'simulated'
ORDER BY 5
"""


def strategy_fills(conn: PgConnection, strategy_id: int | str, mode: str) -> list[StrategyFill]:
    """The strategy's fills in ``mode``, oldest first (what the live protections replay)."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('trading.order_events') IS NOT NULL")
        if not cur.fetchone()[0]:
            return []
        cur.execute(_FILLS_SQL, {"strategy": str(strategy_id), "mode": mode})
        return [StrategyFill(s, side, float(q), float(p), at) for s, side, q, p, at in cur.fetchall()]


def working_intents(conn: PgConnection, mode: str) -> list[IntentRecord]:
    """Intents of ``mode`` that may still trade (pending, submitted, unknown, acknowledged), oldest first."""
    if not _ledger_exists(conn):
        return []
    return load_intents(conn, statuses=sorted(WORKING), mode=mode)


def working_sells(cur: Any, mode: str, symbol: str, exclude: Sequence[str] = ()) -> float:
    """Shares in SELL intents of ``mode`` and ``symbol`` that may still trade, except ``exclude`` (intent ids /
    cOIDs). Takes the caller's cursor: it runs inside the claiming transaction and must not end it."""
    cur.execute("SELECT coalesce(sum(quantity - filled_quantity), 0) FROM trading.order_intents"
                " WHERE mode = %s AND symbol = %s AND side = 'SELL' AND status = ANY(%s) AND NOT intent_id = ANY(%s)",
                (mode, symbol, sorted(WORKING), list(exclude)))
    return float(cur.fetchone()[0])


def orders_today(conn: PgConnection, mode: str, *, strategy_id: int | str, session: date) -> int:
    """Orders of ``mode`` decided today (UTC), except this strategy's decisions for ``session`` (a re-run
    re-identifies those instead of counting them twice). Rejected, failed, cancelled and vetoed ones are free."""
    if not _ledger_exists(conn):
        return 0
    with conn, conn.cursor() as cur:
        cur.execute("""SELECT count(*) FROM trading.order_intents
                       WHERE mode = %s AND created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                         AND status NOT IN ('rejected', 'failed', 'cancelled', 'vetoed')
                         AND NOT (strategy_id = %s AND session_date IS NOT DISTINCT FROM %s)""",
                    (mode, str(strategy_id), session))
        return int(cur.fetchone()[0])


def session_decisions(conn: PgConnection, strategy_id: int | str, session: date, mode: str) -> list[IntentRecord]:
    """The decisions a strategy already took for ``session`` in ``mode`` (any run, any DAG)."""
    if not _ledger_exists(conn):
        return []
    with conn, conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(_COLUMNS)} FROM trading.order_intents WHERE strategy_id = %s"
                    " AND session_date = %s AND mode = %s ORDER BY created_at, intent_id",
                    (str(strategy_id), session, mode))
        return [_record(row) for row in cur.fetchall()]


def rearm(conn: PgConnection, intent: IntentRecord, plan: OrderPlan, run: RunContext) -> IntentRecord:
    """A ``vetoed`` intent (never sent: its cOID was never used) taken up by a later run of the same session: it
    becomes ``pending`` with that run's plan. Any other status is left alone (one decision per session)."""
    from psycopg2.extras import Json

    with conn, conn.cursor() as cur:
        cur.execute(
            f"""UPDATE trading.order_intents SET status = 'pending', dag_id = %s, run_id = %s, try_number = %s,
                    side = %s, quantity = %s, limit_price = %s, ref_price = %s, order_type = %s,
                    position_before = %s, target_position = %s, mlflow_run_id = %s, signal = %s,
                    risk_decision = %s, dq_verdict = %s, last_error = NULL, updated_at = now()
                WHERE intent_id = %s AND status = 'vetoed' RETURNING {', '.join(_COLUMNS)}""",
            (run.dag_id, run.run_id, run.try_number, plan.side, plan.quantity, plan.limit_price, plan.ref_price,
             plan.order_type, plan.position_before, plan.target_position, run.mlflow_run_id, Json(plan.signal),
             Json(plan.risk), Json(plan.dq), intent.intent_id),
        )  # fmt: skip
        row = cur.fetchone()
        if row is None:
            return intent
        cur.execute(
            "INSERT INTO trading.order_events (intent_id, kind, status, previous_status, try_number, message)"
            " VALUES (%s, 'status', 'pending', 'vetoed', %s, %s)",
            (intent.intent_id, run.try_number, f"re-armed by {run.dag_id} run {run.run_id}: the earlier attempt "
             f"was vetoed before submission ({intent.last_error})"),
        )  # fmt: skip
        return _record(row)


def _ledger_exists(conn: PgConnection) -> bool:
    with conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('trading.order_intents') IS NOT NULL")
        return bool(cur.fetchone()[0])
