"""Portfolio snapshot: read positions, account summary, ledger, live orders and executions from the gateway
and load them into ``raw.*`` in ONE transaction per monitor run (a re-run replaces its own snapshot)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.marketdata.db import apply_ddl, connection

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

    from include.ibkr.client import IBKRClient
    from include.ibkr.models import AccountSummary, LedgerEntry, LiveOrder, Position, Trade

log = logging.getLogger("include.portfolio")
SCHEMA_SQL = Path(__file__).with_name("schema.sql")
TRADE_DAYS = 7  # §8.9: the most the gateway serves


def ensure_schema(conn: PgConnection) -> None:
    apply_ddl(conn, SCHEMA_SQL.read_text())


class ReadOnceBroker:
    """The client with live orders and executions read once per run: ``refresh_intents`` and the snapshot see
    the same broker view, and the two endpoints' 1 request / 5 s pacing (§9) is paid once."""

    def __init__(self, client: IBKRClient) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    @property
    def account_id(self) -> str:
        return self.client.account_id

    @cached_property
    def _live(self) -> list[LiveOrder]:
        return self.client.live_orders()

    @cached_property
    def _trades(self) -> list[Trade]:
        return self.client.trades(days=TRADE_DAYS)

    def live_orders(self) -> list[LiveOrder]:
        return self._live

    def trades(self, days: int = 1) -> list[Trade]:
        return self._trades  # always the full window; callers filter by cOID


@dataclass
class PortfolioSnapshot:
    run_key: str
    snapshot_at: datetime
    account_id: str
    positions: list[Position]
    summary: AccountSummary
    ledger: list[LedgerEntry]
    orders: list[LiveOrder]
    trades: list[Trade]
    refreshed_intents: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"positions": len(self.positions), "ledger": len(self.ledger), "orders": len(self.orders),
                "trades": len(self.trades), "refreshed_intents": len(self.refreshed_intents)}


def fetch_snapshot(client: IBKRClient, dsn: str, run_key: str) -> PortfolioSnapshot:
    """Executions and live orders first (they also bring the ledger's open intents up to date, nothing is ever
    sent), then positions, summary and ledger. A fill landing between the two reads belongs to a working order
    the ledger knows: reconciliation allows for it (see ``reconcile.expected_range``)."""
    from include.execution import refresh_intents

    broker = ReadOnceBroker(client)
    orders, trades = broker.live_orders(), broker.trades()
    refreshed = refresh_intents(dsn, broker)
    snapshot_at = datetime.now(UTC)
    return PortfolioSnapshot(
        run_key=run_key, snapshot_at=snapshot_at, account_id=client.account_id, positions=client.positions(),
        summary=client.account_summary(), ledger=client.ledger(), orders=orders, trades=trades,
        refreshed_intents=[i.intent_id for i in refreshed],
    )  # fmt: skip


def load_snapshot(dsn: str, snap: PortfolioSnapshot) -> dict[str, int]:
    """Replace the run's rows in raw.portfolio_positions / account_summary / account_ledger / broker_orders and
    add new executions to raw.broker_trades, all in one transaction; returns rows written per table."""
    from psycopg2.extras import Json, execute_values

    key, at, acct = snap.run_key, snap.snapshot_at, snap.account_id
    s = snap.summary
    with connection(dsn) as conn:
        ensure_schema(conn)
        with conn, conn.cursor() as cur:
            for table in ("portfolio_positions", "account_summary", "account_ledger", "broker_orders"):
                cur.execute(f"DELETE FROM raw.{table} WHERE run_key = %s", (key,))
            execute_values(cur, (
                "INSERT INTO raw.portfolio_positions (run_key, snapshot_at, account_id, conid, symbol, asset_class,"
                " currency, quantity, market_price, market_value, avg_cost, unrealized_pnl, realized_pnl) VALUES %s"
            ), [(key, at, p.account_id or acct, p.conid, p.symbol, p.asset_class, p.currency, p.quantity,
                 p.market_price, p.market_value, p.avg_cost, p.unrealized_pnl, p.realized_pnl)
                for p in snap.positions if p.quantity])  # fmt: skip
            cur.execute(
                "INSERT INTO raw.account_summary (run_key, snapshot_at, account_id, net_liquidation, total_cash,"
                " gross_position_value, buying_power, maint_margin_req, summary_values)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (key, at, s.account_id or acct, s.net_liquidation, s.total_cash, s.gross_position_value,
                 s.buying_power, s.get("maintmarginreq"), Json(s.values)),
            )  # fmt: skip
            execute_values(cur, (
                "INSERT INTO raw.account_ledger (run_key, snapshot_at, account_id, currency, cash_balance,"
                " settled_cash, net_liquidation, stock_market_value, unrealized_pnl, realized_pnl, ledger_at)"
                " VALUES %s"
            ), [(key, at, acct, e.currency, e.cash_balance, e.settled_cash, e.net_liquidation,
                 e.stock_market_value, e.unrealized_pnl, e.realized_pnl, e.timestamp)
                for e in snap.ledger])  # fmt: skip
            execute_values(cur, (
                "INSERT INTO raw.broker_orders (run_key, snapshot_at, account_id, order_id, coid, conid, symbol,"
                " side, status, order_type, total_size, filled_quantity, remaining_quantity, price, avg_price)"
                " VALUES %s"
            ), [(key, at, o.account or acct, o.order_id, o.coid, o.conid, o.symbol, o.side, o.status, o.order_type,
                 o.total_size, o.filled_quantity, o.remaining_quantity, o.price, o.avg_price)
                for o in snap.orders])  # fmt: skip
            execute_values(cur, (
                "INSERT INTO raw.broker_trades (execution_id, account_id, conid, symbol, side, quantity, price,"
                " commission, trade_at, coid, first_run_key) VALUES %s ON CONFLICT (execution_id) DO NOTHING"
            ), [(t.execution_id, t.account or acct, t.conid, t.symbol, t.side, t.size, t.price, t.commission,
                 t.trade_time, t.coid, key) for t in snap.trades])  # fmt: skip
            new_trades = cur.rowcount if snap.trades else 0
    return {**snap.counts(), "new_trades": max(new_trades, 0)}
