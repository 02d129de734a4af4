"""Live protections: the strategy's fills (from the order ledger, passed in) replayed into equity per XNYS
session, evaluated, and the triggers recorded once per strategy, mode, protection, symbol and session."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from include.risk.protections.config import ProtectionsConfig
from include.risk.protections.round_trips import RoundTripBook
from include.risk.protections.status import ProtectionStatus, evaluate

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

log = logging.getLogger(__name__)


class Fill(Protocol):
    """One fill of the strategy (``include.execution.ledger.StrategyFill``)."""

    symbol: str
    side: str
    quantity: float
    price: float
    at: datetime


@dataclass(frozen=True)
class LiveProtections:
    """The status now, and the events newly recorded by this evaluation (to alert on)."""

    status: ProtectionStatus
    new: list[dict[str, Any]] = field(default_factory=list)


DDL = """
CREATE SCHEMA IF NOT EXISTS trading;
CREATE TABLE IF NOT EXISTS trading.protection_events (
    event_id      bigserial PRIMARY KEY,
    strategy_id   text NOT NULL,
    mode          text NOT NULL,
    protection    text NOT NULL CHECK (protection IN ('max_drawdown', 'loss_streak')),
    symbol        text NOT NULL DEFAULT '',
    session_date  date NOT NULL,
    reason        text NOT NULL,
    details       jsonb,
    dag_id        text,
    run_id        text,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (strategy_id, mode, protection, symbol, session_date)
);
"""


def _closes(conn: PgConnection, symbols: Sequence[str], start: date, end: date) -> dict[date, dict[str, float]]:
    with conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('analytics_marts.fct_daily_indicators') IS NOT NULL")
        if not cur.fetchone()[0]:
            return {}
        cur.execute("SELECT session_date, symbol, close FROM analytics_marts.fct_daily_indicators"
                    " WHERE symbol = ANY(%s) AND session_date BETWEEN %s AND %s ORDER BY 1",
                    (list(symbols), start, end))
        out: dict[date, dict[str, float]] = {}
        for day, symbol, close in cur.fetchall():
            out.setdefault(day, {})[symbol] = float(close)
    return out


def live_status(conn: PgConnection, config: ProtectionsConfig, fills: Sequence[Fill], *, capital: float,
                today: date, exchange: str = "XNYS") -> ProtectionStatus:
    """Replay the ledger: fills -> round trips (session = the XNYS session the fill falls on, or the next one),
    equity per session from ``first fill`` to ``today`` marked at the mart's closes, then ``evaluate``."""
    from include.marketdata.calendar import MarketCalendar

    cal = MarketCalendar(exchange)
    if not fills:
        return evaluate(config, session=0, equity=[capital], trades=[])
    first = min(f.at.astimezone(UTC).date() for f in fills)
    sessions = cal.sessions_between(cal.previous_session(first), today)
    index = {d: i for i, d in enumerate(sessions)}
    closes = _closes(conn, sorted({f.symbol for f in fills}), sessions[0], sessions[-1])
    book = RoundTripBook()
    equity: list[float] = []
    last_close: dict[str, float] = {}
    pending = list(fills)
    for i, day in enumerate(sessions):
        while pending and pending[0].at.astimezone(UTC).date() <= day:
            f = pending.pop(0)
            book.fill(f.symbol, f.side, f.quantity, f.price, 0.0, i, day)
            last_close.setdefault(f.symbol, f.price)
        last_close.update(closes.get(day, {}))
        equity.append(book.equity(capital, last_close))
    now = index.get(today, len(sessions) - 1)
    return evaluate(config, session=now, equity=equity[: now + 1], trades=book.trades)


def record_events(conn: PgConnection, status: ProtectionStatus, *, strategy_id: int | str, mode: str,
                  session_date: date, dag_id: str | None = None, run_id: str | None = None) -> list[dict[str, Any]]:
    """Insert the active protections into ``trading.protection_events``; returns those that were new."""
    from psycopg2.extras import Json

    from include.marketdata.db import apply_ddl

    apply_ddl(conn, DDL)
    new = []
    with conn, conn.cursor() as cur:
        for event in status.events():
            cur.execute(
                "INSERT INTO trading.protection_events (strategy_id, mode, protection, symbol, session_date, reason,"
                " details, dag_id, run_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (strategy_id, mode, protection, symbol, session_date) DO NOTHING RETURNING event_id",
                (str(strategy_id), mode, event["protection"], event["symbol"] or "", session_date, event["reason"],
                 Json(event), dag_id, run_id),
            )  # fmt: skip
            if cur.fetchone() is not None:
                new.append(event)
    return new


def evaluate_live(dsn: str, strategy: Any, fills: Sequence[Fill], *, mode: str, dag_id: str | None = None,
                  run_id: str | None = None, today: date | None = None) -> LiveProtections | None:
    """The live protections of ``strategy`` (a StrategyConfig) from its ``fills`` (the order ledger's, oldest
    first), recorded in ``trading.protection_events``; the caller alerts on ``new``. None: no protection set."""
    from include.marketdata.db import connection

    config: ProtectionsConfig = strategy.protections
    if not config.enabled:
        return None
    capital = config.capital or strategy.risk.max_gross_exposure
    day = today or datetime.now(UTC).date()
    with connection(dsn) as conn:
        status = live_status(conn, config, fills, capital=capital, today=day)
        new = record_events(conn, status, strategy_id=strategy.id, mode=mode, session_date=day, dag_id=dag_id,
                            run_id=run_id)
    for event in new:
        log.warning("protection %s for strategy %s (%s): %s", event["protection"], strategy.name, mode,
                    event["reason"])
    return LiveProtections(status, new)
