"""Per-strategy protections (freqtrade style), one code path for backtests and live trading.

* **max drawdown**: when the strategy's equity is ``max_drawdown_pct`` below its peak (over the last
  ``lookback_sessions``, or all history), the strategy goes **REDUCING**: only orders that reduce a position
  (exits) pass. It lifts by itself once the drawdown is back under the threshold (equity recovered, or the old
  peak left the lookback window).
* **loss streak**: ``max_losing_trades`` losing round trips of one symbol whose exits fall within
  ``window_sessions`` sessions put that symbol in **cooldown**: no new entries (BUYs) for ``cooldown_sessions``
  sessions, counted from the session of the last losing exit (that session included).

``evaluate`` is a pure function of the equity history, the closed round trips and the current session (sessions
are integer ordinals: bar index in a backtest, XNYS session index live). ``RoundTripBook`` turns fills into round
trips (flat -> long -> flat per symbol, commissions included) for both. The risk check
``include.risk.checks.protections.ProtectionGate`` applies a ``ProtectionStatus`` to order proposals.

Live (``evaluate_live``): the strategy's fills come from the order ledger (``trading.order_intents`` of its id and
mode; ``order_events`` of kind ``fill`` for paper/live, and in ``dry_run`` the ``simulated`` intents themselves at
their limit price, on the day they were recorded); equity per session = configured capital + realised P&L of the
round trips closed so far + unrealised P&L of open positions at that session's close
(``analytics_marts.fct_daily_indicators``). Triggers are recorded in ``trading.protection_events`` (once per
strategy, mode, protection, symbol and session) and alerted (event ``protection_triggered``) when new.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

log = logging.getLogger(__name__)
_EPS = 1e-9


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MaxDrawdownProtection(_Strict):
    max_drawdown_pct: float = Field(0.15, gt=0, lt=1, description="drawdown from the peak (fraction) -> REDUCING")
    lookback_sessions: int | None = Field(None, ge=2, description="peak over the last N sessions; None = all")


class LossStreakProtection(_Strict):
    max_losing_trades: int = Field(3, ge=1, description="losing round trips of one symbol that trigger a cooldown")
    window_sessions: int = Field(20, ge=1, description="... when their exits fall within this many sessions")
    cooldown_sessions: int = Field(5, ge=1, description="no new entries in that symbol for this many sessions")


class ProtectionsConfig(_Strict):
    """``protections:`` of a strategy in strategies.yaml; a protection left out (null) is off."""

    capital: float | None = Field(None, gt=0, description="equity base; None = the strategy's max_gross_exposure")
    max_drawdown: MaxDrawdownProtection | None = None
    loss_streak: LossStreakProtection | None = None

    @property
    def enabled(self) -> bool:
        return self.max_drawdown is not None or self.loss_streak is not None


@dataclass(frozen=True)
class ClosedTrade:
    """A round trip: from flat to flat in one symbol; ``pnl`` is net of commissions."""

    symbol: str
    entry_session: int
    exit_session: int
    pnl: float
    entry_date: date | None = None
    exit_date: date | None = None
    quantity: float = 0.0  # the largest position held during the trade
    cost: float = 0.0  # $ bought (entry notional incl. adds)
    commission: float = 0.0

    @property
    def won(self) -> bool:
        return self.pnl > 0


@dataclass(frozen=True)
class ProtectionStatus:
    """The protections' verdict at one session: REDUCING (exits only) and the symbols in cooldown."""

    session: int
    reducing: bool = False
    drawdown: float = 0.0
    equity: float | None = None
    peak: float | None = None
    reason: str = ""
    cooldowns: Mapping[str, tuple[int, str]] = field(default_factory=dict)  # symbol -> (last blocked session, why)

    def blocks(self, side: str, symbol: str, reduces_position: bool) -> str | None:
        """Why this order is not allowed (None: allowed). Exits are never blocked."""
        if reduces_position:
            return None
        if self.reducing:
            return f"protection max_drawdown: strategy REDUCING (exits only): {self.reason}"
        if side == "BUY" and symbol in self.cooldowns:
            return f"protection loss_streak: {symbol} in cooldown: {self.cooldowns[symbol][1]}"
        return None

    def events(self) -> list[dict[str, Any]]:
        """What is active now, as records (protection, symbol, reason, numbers)."""
        out = []
        if self.reducing:
            out.append({"protection": "max_drawdown", "symbol": None, "reason": self.reason,
                        "drawdown": round(self.drawdown, 6), "equity": self.equity, "peak": self.peak})
        for symbol, (until, why) in sorted(self.cooldowns.items()):
            out.append({"protection": "loss_streak", "symbol": symbol, "reason": why, "until_session": until})
        return out


def drawdown(equity: Sequence[float], lookback: int | None = None) -> tuple[float, float, float]:
    """``(drawdown, equity, peak)`` at the last point of ``equity``; the peak over the last ``lookback`` points."""
    window = equity[-lookback:] if lookback else equity
    peak, now = max(window), equity[-1]
    return (1.0 - now / peak if peak > 0 else 0.0), now, peak


def evaluate(config: ProtectionsConfig, *, session: int, equity: Sequence[float],
             trades: Iterable[ClosedTrade]) -> ProtectionStatus:
    """The protections' state at the close of ``session``: ``equity`` is the strategy's equity per session up to
    and including it, ``trades`` the round trips closed so far (older ones may be left out: only exits within
    ``window_sessions + cooldown_sessions`` sessions matter)."""
    reducing, dd, now, peak, reason = False, 0.0, None, None, ""
    rule = config.max_drawdown
    if rule is not None and equity:
        dd, now, peak = drawdown(equity, rule.lookback_sessions)
        if dd >= rule.max_drawdown_pct - _EPS:
            reducing = True
            over = f"last {rule.lookback_sessions} sessions" if rule.lookback_sessions else "all sessions"
            reason = (f"drawdown {dd:.2%} >= {rule.max_drawdown_pct:.2%} (equity {now:,.2f}, peak {peak:,.2f} "
                      f"over {over})")
    cooldowns: dict[str, tuple[int, str]] = {}
    streak = config.loss_streak
    if streak is not None:
        losses: dict[str, list[int]] = {}
        for trade in trades:
            if trade.pnl < 0 and trade.exit_session <= session:
                losses.setdefault(trade.symbol, []).append(trade.exit_session)
        for symbol, exits in losses.items():
            exits.sort()
            n = streak.max_losing_trades
            # The latest losing exit that completes a streak of n within the window starts the cooldown.
            for j in range(len(exits) - 1, n - 2, -1):
                if session - exits[j] >= streak.cooldown_sessions:
                    break
                if exits[j] - exits[j - n + 1] < streak.window_sessions:
                    until = exits[j] + streak.cooldown_sessions - 1
                    cooldowns[symbol] = (until, f"{n} losing trades within {streak.window_sessions} sessions "
                                                f"(last exit at session {exits[j]}); no entries through session "
                                                f"{until} ({streak.cooldown_sessions} sessions)")
                    break
    return ProtectionStatus(session=session, reducing=reducing, drawdown=dd, equity=now, peak=peak, reason=reason,
                            cooldowns=cooldowns)


class RoundTripBook:
    """Positions and round trips from fills (long only: a SELL never exceeds the position)."""

    def __init__(self) -> None:
        self.qty: dict[str, float] = {}
        self.realised = 0.0  # $ net P&L of closed round trips
        self._open: dict[str, dict[str, Any]] = {}  # symbol -> running trade
        self.trades: list[ClosedTrade] = []

    def fill(self, symbol: str, side: str, quantity: float, price: float, commission: float, session: int,
             day: date | None = None) -> ClosedTrade | None:
        """Apply one fill; returns the round trip it closed, if any."""
        held = self.qty.get(symbol, 0.0)
        trade = self._open.get(symbol)
        if side == "BUY":
            if trade is None:
                trade = self._open[symbol] = {"entry_session": session, "entry_date": day, "cash": 0.0,
                                              "max_qty": 0.0, "cost": 0.0, "commission": 0.0}
            trade["cash"] -= quantity * price + commission
            trade["cost"] += quantity * price
            held += quantity
            trade["max_qty"] = max(trade["max_qty"], held)
        else:
            quantity = min(quantity, held)
            if trade is None or quantity <= 0:
                return None
            trade["cash"] += quantity * price - commission
            held -= quantity
        trade["commission"] += commission
        self.qty[symbol] = held
        if held > _EPS:
            return None
        self.qty.pop(symbol, None)
        del self._open[symbol]
        closed = ClosedTrade(symbol=symbol, entry_session=trade["entry_session"], exit_session=session,
                             pnl=trade["cash"], entry_date=trade["entry_date"], exit_date=day,
                             quantity=trade["max_qty"], cost=trade["cost"], commission=trade["commission"])
        self.realised += closed.pnl
        self.trades.append(closed)
        return closed

    def open_cash(self, symbol: str) -> float:
        """Net cash of the open trade in ``symbol`` so far (negative: money in)."""
        trade = self._open.get(symbol)
        return trade["cash"] if trade else 0.0

    def equity(self, capital: float, closes: Mapping[str, float]) -> float:
        """Capital + realised + unrealised (open trades' cash + their positions at ``closes``)."""
        value = capital + self.realised
        for symbol, qty in self.qty.items():
            value += self.open_cash(symbol) + qty * closes.get(symbol, 0.0)
        return value


# --- live: the order ledger ------------------------------------------------------------------------------------

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


@dataclass(frozen=True)
class LedgerFill:
    symbol: str
    side: str
    quantity: float
    price: float
    at: datetime


def ledger_fills(conn: PgConnection, strategy_id: int | str, mode: str) -> list[LedgerFill]:
    """The strategy's fills in ``mode``, oldest first (dry_run: its simulated intents at their limit price)."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('trading.order_events') IS NOT NULL")
        if not cur.fetchone()[0]:
            return []
        cur.execute(_FILLS_SQL, {"strategy": str(strategy_id), "mode": mode})
        return [LedgerFill(s, side, float(q), float(p), at) for s, side, q, p, at in cur.fetchall()]


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


def live_status(conn: PgConnection, config: ProtectionsConfig, *, strategy_id: int | str, mode: str,
                capital: float, today: date, exchange: str = "XNYS") -> ProtectionStatus:
    """Replay the ledger: fills -> round trips (session = the XNYS session the fill falls on, or the next one),
    equity per session from ``first fill`` to ``today`` marked at the mart's closes, then ``evaluate``."""
    from include.marketdata.calendar import MarketCalendar

    fills = ledger_fills(conn, strategy_id, mode)
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


def evaluate_live(dsn: str, strategy: Any, *, mode: str, dag_id: str | None = None, run_id: str | None = None,
                  today: date | None = None) -> ProtectionStatus | None:
    """The live protections of ``strategy`` (a StrategyConfig): evaluated from the ledger, recorded, and alerted
    when newly triggered. None when the strategy configures no protection."""
    from include.marketdata.db import connection

    config: ProtectionsConfig = strategy.protections
    if not config.enabled:
        return None
    capital = config.capital or strategy.risk.max_gross_exposure
    day = today or datetime.now(UTC).date()
    with connection(dsn) as conn:
        status = live_status(conn, config, strategy_id=strategy.id, mode=mode, capital=capital, today=day)
        new = record_events(conn, status, strategy_id=strategy.id, mode=mode, session_date=day, dag_id=dag_id,
                            run_id=run_id)
    for event in new:
        what = "REDUCING (exits only)" if event["protection"] == "max_drawdown" else f"cooldown {event['symbol']}"
        log.warning("protection %s for strategy %s (%s): %s", event["protection"], strategy.name, mode,
                    event["reason"])
        try:
            from include.alerts import send_alert

            send_alert("protection_triggered", f"strategy {strategy.name}: {what}",
                       details={"strategy_id": strategy.id, "mode": mode, **event}, severity="warning",
                       dag_id=dag_id, run_id=run_id)
        except Exception:  # the alert must not stop the risk assessment; the event is recorded either way
            log.exception("could not send the protection_triggered alert")
    return status
