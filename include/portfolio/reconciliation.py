"""Reconcile one stored portfolio snapshot against the ledger, record the result in ``trading.reconciliations``
and, on any mismatch, set the trading state to HALTED and alert (once per distinct set of mismatches)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from include.execution import ledger
from include.marketdata.db import connection
from include.portfolio.loaders import ensure_schema
from include.portfolio.mismatches import BrokerOrder, BrokerTrade, Findings, find_mismatches, ledger_positions

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

    from include.execution.models import IntentRecord

log = logging.getLogger("include.portfolio")
ALERT_EVENT = "reconciliation_mismatch"


@dataclass
class Inputs:
    run_key: str
    snapshot_at: Any
    account_id: str
    positions: dict[str, float]
    orders: list[BrokerOrder]
    trades: list[BrokerTrade]
    intents: list[IntentRecord]
    baseline: dict[str, float]


def _query(conn: PgConnection, sql: str, args: tuple = ()) -> list[tuple]:
    with conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def read_baseline(conn: PgConnection, account_id: str) -> dict[str, float]:
    rows = _query(conn, "SELECT DISTINCT ON (symbol) symbol, quantity FROM trading.reconciliation_baseline"
                        " WHERE account_id = %s ORDER BY symbol, baseline_id DESC", (account_id,))
    return {s: float(q) for s, q in rows if q}


def load_inputs(conn: PgConnection, run_key: str) -> Inputs:
    """The run's stored snapshot, every stored execution of the account, its paper/live intents, the baseline."""
    ensure_schema(conn)
    ledger.ensure_schema(conn)
    head = _query(conn, "SELECT snapshot_at, account_id FROM raw.account_summary WHERE run_key = %s", (run_key,))
    if not head:
        raise LookupError(f"no portfolio snapshot stored for run {run_key!r}")
    snapshot_at, account = head[0]
    positions: dict[str, float] = {}
    for symbol, qty in _query(conn, "SELECT symbol, quantity FROM raw.portfolio_positions WHERE run_key = %s",
                              (run_key,)):
        positions[symbol] = positions.get(symbol, 0.0) + qty
    orders = [BrokerOrder(*r) for r in _query(
        conn, "SELECT order_id, coid, symbol, side, status, total_size, filled_quantity FROM raw.broker_orders"
              " WHERE run_key = %s ORDER BY order_id", (run_key,))]  # fmt: skip
    trades = [BrokerTrade(*r) for r in _query(
        conn, "SELECT execution_id, coid, symbol, side, quantity, price FROM raw.broker_trades"
              " WHERE account_id = %s ORDER BY trade_at, execution_id", (account,))]  # fmt: skip
    intents = [i for i in ledger.load_intents(conn) if i.mode != "dry_run" and i.account_id == account]
    return Inputs(run_key, snapshot_at, account, positions, orders, trades, intents, read_baseline(conn, account))


def accept_baseline(dsn: str, run_key: str, reason: str, accepted_by: str) -> dict[str, float]:
    """Record what the run's broker positions hold beyond the ledger's fills as the accepted baseline (positions
    that existed before the system traded). Returns the new baseline per symbol."""
    if not reason.strip():
        raise ValueError("accepting a reconciliation baseline needs a reason")
    with connection(dsn) as conn:
        inputs = load_inputs(conn, run_key)
        explained = ledger_positions(inputs.intents)
        symbols = set(inputs.positions) | set(explained) | set(inputs.baseline)
        new = {s: inputs.positions.get(s, 0.0) - explained.get(s, 0.0) for s in sorted(symbols)}
        with conn, conn.cursor() as cur:
            for symbol, qty in new.items():
                if abs(qty - inputs.baseline.get(symbol, 0.0)) > 1e-9:
                    cur.execute("INSERT INTO trading.reconciliation_baseline (account_id, symbol, quantity, reason,"
                                " accepted_by) VALUES (%s, %s, %s, %s, %s)",
                                (inputs.account_id, symbol, qty, reason.strip(), accepted_by))  # fmt: skip
    return {s: q for s, q in new.items() if q}


def _already_alerted(conn: PgConnection, run_key: str, fingerprint: str) -> bool:
    rows = _query(conn, "SELECT fingerprint, alert_error, alert_channels IS NOT NULL FROM trading.reconciliations"
                        " WHERE run_key <> %s ORDER BY reconciliation_id DESC LIMIT 1", (run_key,))
    return bool(rows) and rows[0][0] == fingerprint and rows[0][1] is None and rows[0][2]


def run_reconciliation(
    dsn: str, run_key: str, *, changed_by: str, dag_id: str | None = None, run_id: str | None = None,
    grace: timedelta = timedelta(minutes=2), alert: Any = None,
) -> dict[str, Any]:
    """Reconcile the run's snapshot; on mismatch halt trading (unless already HALTED) and alert unless the
    previous run already alerted the same mismatches. ``alert`` defaults to ``include.alerts.send_alert``.
    The result row is written even when the alert fails (the error is kept, then raised)."""
    from psycopg2.extras import Json

    from include.risk.state_store import change_state, read_state

    with connection(dsn) as conn:
        inputs = load_inputs(conn, run_key)
        findings: Findings = find_mismatches(
            positions=inputs.positions, orders=inputs.orders, trades=inputs.trades, intents=inputs.intents,
            baseline=inputs.baseline, snapshot_at=inputs.snapshot_at, grace=grace,
        )  # fmt: skip
        before = read_state(dsn).state.value
        after, halted, channels, alert_error = before, False, None, None
        fingerprint = findings.fingerprint()
        if findings.mismatches:
            reason = findings.reason()
            log.error("%s", reason)
            if before != "HALTED":
                after, halted = change_state(dsn, "HALTED", reason[:2000], changed_by).state.value, True
            if halted or not _already_alerted(conn, run_key, fingerprint or ""):
                try:
                    if alert is None:
                        from include.alerts import send_alert as alert
                    channels = list(alert(ALERT_EVENT, reason, details={
                        "run_key": run_key, "account_id": inputs.account_id, "state": after,
                        "mismatches": findings.as_json(), "deferred": findings.deferred,
                    }, severity="critical", dag_id=dag_id, run_id=run_id))  # fmt: skip
                except Exception as exc:  # recorded below, then raised: the task retries the alert
                    alert_error = f"{type(exc).__name__}: {exc}"
        with conn, conn.cursor() as cur:
            cur.execute(
                """
                INSERT INTO trading.reconciliations (run_key, snapshot_at, account_id, status, mismatch_count,
                    mismatches, fingerprint, deferred, state_before, state_after, halted, alert_channels, alert_error)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (run_key) DO UPDATE SET snapshot_at = EXCLUDED.snapshot_at,
                    status = EXCLUDED.status, mismatch_count = EXCLUDED.mismatch_count,
                    mismatches = EXCLUDED.mismatches, fingerprint = EXCLUDED.fingerprint,
                    deferred = EXCLUDED.deferred, state_before = EXCLUDED.state_before,
                    state_after = EXCLUDED.state_after, halted = trading.reconciliations.halted OR EXCLUDED.halted,
                    alert_channels = COALESCE(EXCLUDED.alert_channels, trading.reconciliations.alert_channels),
                    alert_error = EXCLUDED.alert_error, reconciled_at = now()
                """,
                (run_key, inputs.snapshot_at, inputs.account_id, findings.status, len(findings.mismatches),
                 Json(findings.as_json()), fingerprint, Json(findings.deferred), before, after, halted,
                 Json(channels) if channels is not None else None, alert_error),
            )  # fmt: skip
    result = {"run_key": run_key, "account_id": inputs.account_id, "snapshot_at": inputs.snapshot_at.isoformat(),
              "status": findings.status, "mismatch_count": len(findings.mismatches),
              "mismatches": findings.as_json(), "deferred": findings.deferred, "state_before": before,
              "state_after": after, "halted": halted, "alert_channels": channels, "alert_error": alert_error,
              "baseline": inputs.baseline}
    if alert_error:
        raise RuntimeError(f"trading HALTED ({findings.reason()}) but the alert failed: {alert_error}")
    return result


def latest(dsn: str, limit: int = 10) -> list[Mapping[str, Any]]:
    """The latest reconciliation results, newest first (what a user reads to see why trading halted)."""
    with connection(dsn) as conn:
        ensure_schema(conn)
        with conn, conn.cursor() as cur:
            cur.execute("SELECT * FROM trading.reconciliations ORDER BY reconciliation_id DESC LIMIT %s", (limit,))
            names = [d.name for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
