"""Event-driven daily backtest of a configured strategy on the dbt mart history: fills at the next open, the live
risk engine, no look-ahead. The loop and the checks it leaves out: docs/backtesting.md.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from include.backtest.metrics import compute_metrics
from include.risk.checks import DEFAULT_CHECKS, ProtectionGate
from include.risk.protections import ClosedTrade, ProtectionStatus, RoundTripBook, evaluate

if TYPE_CHECKING:
    from include.config.models import StrategyConfig
    from include.strategies.base import Strategy

LIVE_ONLY_CHECKS = frozenset({"market_open", "data_quality", "paper_account"})
BACKTEST_CHECKS = tuple(c for c in DEFAULT_CHECKS if c.name not in LIVE_ONLY_CHECKS)

MART = "analytics_marts.fct_daily_indicators"
BARS = "analytics_intermediate.int_daily_bars_enriched"
_BAR_COLUMNS = ("open", "high", "low", "volume", "return_simple", "return_log", "true_range", "gap_pct")
_MART_COLUMNS = ("close", "sma_20", "sma_50", "sma_200", "ema_12", "ema_26", "macd", "macd_signal", "macd_hist",
                 "rsi_14", "bb_upper", "bb_middle", "bb_lower", "atr_14", "volume_zscore_20")  # fmt: skip
HISTORY_SQL = f"""
SELECT f.symbol, f.session_date, {", ".join(f"b.{c}::float8 AS {c}" for c in _BAR_COLUMNS)},
       {", ".join(f"f.{c}::float8 AS {c}" for c in _MART_COLUMNS)}
FROM {MART} f JOIN {BARS} b USING (symbol, session_date)
WHERE f.symbol = ANY(%(symbols)s)
  AND (%(start)s::date IS NULL OR f.session_date >= %(start)s::date)
  AND (%(end)s::date IS NULL OR f.session_date <= %(end)s::date)
ORDER BY f.symbol, f.session_date
"""


class CostModel(BaseModel):
    """IBKR-like fixed pricing ($0.005/share, min $1, max 1 % of the trade value) and slippage in basis points."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    commission_per_share: float = Field(0.005, ge=0)
    commission_min: float = Field(1.0, ge=0)
    commission_max_pct: float = Field(0.01, ge=0, le=1)
    slippage_bps: float = Field(5.0, ge=0, le=1000)

    def commission(self, quantity: float, price: float) -> float:
        return min(max(self.commission_min, self.commission_per_share * quantity),
                   self.commission_max_pct * quantity * price)

    def fill_price(self, side: str, open_price: float) -> float:
        slip = self.slippage_bps / 10_000
        return open_price * (1 + slip) if side == "BUY" else open_price * (1 - slip)


@dataclass
class SymbolHistory:
    symbol: str
    rows: list[dict[str, Any]]  # strategy inputs, oldest first (the mart row + its bar)
    sessions: list[int] = field(default_factory=list)  # index into History.dates, per row


@dataclass
class History:
    """Per-symbol feature rows aligned on the union of their sessions."""

    dates: list[date]
    symbols: dict[str, SymbolHistory]

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> History:
        by_symbol: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_symbol.setdefault(row["symbol"], []).append(dict(row))
        dates = sorted({r["session_date"] for rs in by_symbol.values() for r in rs})
        index = {d: i for i, d in enumerate(dates)}
        out = {}
        for symbol, rs in sorted(by_symbol.items()):
            rs.sort(key=lambda r: r["session_date"])
            out[symbol] = SymbolHistory(symbol, rs, [index[r["session_date"]] for r in rs])
        return cls(dates, out)

    @property
    def bars(self) -> int:
        return sum(len(s.rows) for s in self.symbols.values())

    def truncate(self, last: date) -> History:
        """The history as it was known at the close of ``last`` (later rows removed)."""
        return History.from_rows(r for s in self.symbols.values() for r in s.rows if r["session_date"] <= last)


def load_history(conn: Any, symbols: Sequence[str], start: date | str | None = None,
                 end: date | str | None = None) -> History:
    """The mart joined with its bars (open prices for the fills) for ``symbols`` between ``start`` and ``end``."""
    with conn.cursor() as cur:
        cur.execute(HISTORY_SQL, {"symbols": [s.upper() for s in symbols], "start": start, "end": end})
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    conn.rollback()
    return History.from_rows(rows)


@dataclass
class BacktestResult:
    strategy: str
    dates: list[date]
    equity: list[float]
    invested: list[bool]
    fills: list[dict[str, Any]]
    trades: list[ClosedTrade]
    signals: list[dict[str, Any]]  # every BUY/SELL the strategy emitted (approved or not)
    protection_events: list[dict[str, Any]]
    vetoes: dict[str, int]
    capital: float
    bars: int
    seconds: float = 0.0
    strategy_seconds: float = 0.0  # time inside generate()
    metrics: dict[str, float] = field(default_factory=dict)

    def trades_table(self) -> list[dict[str, Any]]:
        return [{"symbol": t.symbol, "entry_date": t.entry_date, "exit_date": t.exit_date, "quantity": t.quantity,
                 "cost": round(t.cost, 4), "commission": round(t.commission, 4), "pnl": round(t.pnl, 4)}
                for t in self.trades]  # fmt: skip


def apply_overrides(config: StrategyConfig, overrides: Mapping[str, Any]) -> StrategyConfig:
    """The strategy with dotted-key overrides (``signal.oversold``, ``risk.min_confidence``,
    ``protections.max_drawdown.max_drawdown_pct``...), validated like strategies.yaml."""
    from include.config.models import StrategyConfig

    data = config.model_dump(mode="python")
    for key, value in overrides.items():
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[leaf] = value
    return StrategyConfig.model_validate(data)


def run_backtest(config: StrategyConfig, history: History, costs: CostModel | None = None, *,
                 capital: float | None = None, strategy: Strategy | None = None) -> BacktestResult:
    """Backtest ``config`` on ``history``; ``capital`` defaults to protections.capital, else max_gross_exposure."""
    from include.risk import assess
    from include.strategies.registry import build_strategy, generate_signals

    started = time.perf_counter()
    costs = costs or CostModel()
    strategy = strategy or build_strategy(config)
    capital = capital or config.protections.capital or config.risk.max_gross_exposure
    protections = config.protections
    streak = protections.loss_streak
    keep_trades = (streak.window_sessions + streak.cooldown_sessions) if streak else 0

    by_session: list[list[tuple[str, int]]] = [[] for _ in history.dates]
    for symbol, sh in history.symbols.items():
        for j, i in enumerate(sh.sessions):
            by_session[i].append((symbol, j))

    book = RoundTripBook()
    cash = capital
    last_close: dict[str, float] = {}
    pending: dict[str, dict[str, Any]] = {}
    equity: list[float] = []
    invested: list[bool] = []
    fills: list[dict[str, Any]] = []
    signals_out: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    vetoes: Counter[str] = Counter()
    recent: list[ClosedTrade] = []
    active: dict[tuple[str, str], bool] = {}
    strategy_seconds = 0.0

    for i, day in enumerate(history.dates):
        todays = by_session[i]
        # 1. yesterday's orders at today's open
        if pending:
            here = {symbol: j for symbol, j in todays}
            for symbol, order in pending.items():
                j = here.get(symbol)
                if j is None:
                    continue  # no bar today: the day order lapses
                open_price = history.symbols[symbol].rows[j]["open"]
                if open_price is None or open_price <= 0:
                    continue
                price = costs.fill_price(order["side"], open_price)
                qty = order["quantity"]
                if order["side"] == "SELL":
                    qty = min(qty, book.qty.get(symbol, 0.0))
                    if qty <= 0:
                        continue
                commission = costs.commission(qty, price)
                cash += (-qty * price if order["side"] == "BUY" else qty * price) - commission
                closed = book.fill(symbol, order["side"], qty, price, commission, i, day)
                fills.append({"session_date": day, "symbol": symbol, "side": order["side"], "quantity": qty,
                              "price": price, "commission": commission, "signal_date": order["signal_date"]})
                if closed is not None:
                    recent.append(closed)
            pending = {}
        # 2. mark to market at the close
        for symbol, j in todays:
            close = history.symbols[symbol].rows[j]["close"]
            if close is not None and close > 0:
                last_close[symbol] = close
        gross = sum(q * last_close.get(s, 0.0) for s, q in book.qty.items())
        equity.append(cash + gross)
        invested.append(bool(book.qty))
        # 3. protections on the equity so far and the recent round trips
        status: ProtectionStatus | None = None
        if protections.enabled:
            if keep_trades:
                recent = [t for t in recent if i - t.exit_session < keep_trades]
            status = evaluate(protections, session=i, equity=equity, trades=recent)
            _record_transitions(status, active, events, day)
        if not todays:
            continue
        # 4. the strategy on today's rows (and each symbol's previous row), as the live DAG calls it
        latest = {s: history.symbols[s].rows[j] for s, j in todays}
        previous = {s: history.symbols[s].rows[j - 1] for s, j in todays if j > 0}
        t0 = time.perf_counter()
        signals = generate_signals(strategy, [s for s, _ in todays], latest, previous)
        strategy_seconds += time.perf_counter() - t0
        actionable = [s for s in signals if s.action != "HOLD"]
        if not actionable:
            continue
        for s in actionable:
            signals_out.append({"session_date": day, "symbol": s.symbol, "action": s.action,
                                "confidence": s.confidence})
        # 5. the live risk engine: sizing + checks (+ protections) against the backtest's book. Signals that
        # min_confidence or long_only veto whatever else holds are counted here without the engine: they can never
        # be approved nor change what is (the engine's run tally only counts approved orders).
        floor, viable = config.risk.min_confidence, []
        for s in actionable:
            if s.confidence < floor:
                vetoes["min_confidence"] += 1
            elif s.action == "SELL" and s.symbol not in book.qty:
                vetoes["long_only"] += 1
            else:
                viable.append(s)
        actionable = viable
        if not actionable:
            continue
        prices = {s.symbol: last_close[s.symbol] for s in actionable if s.symbol in last_close}
        prices.update({s: last_close[s] for s in book.qty})
        report = assess(
            actionable, limits=config.risk, mode="dry_run", account_id=None, trading_state="ACTIVE",
            positions=dict(book.qty), last_prices=prices, orders_today=0, verdicts={}, market_open=True,
            net_liquidation=equity[-1], gross_position_value=gross,
            now=datetime.combine(day, dtime(21, 0), tzinfo=UTC),
            checks=(*BACKTEST_CHECKS, ProtectionGate(status)) if status is not None else BACKTEST_CHECKS,
        )  # fmt: skip
        for decision in report.decisions:
            if decision.approved and decision.quantity > 0:
                pending[decision.symbol] = {"side": decision.side, "quantity": decision.quantity, "signal_date": day}
            for v in decision.vetoes:
                vetoes[v.check] += 1

    result = BacktestResult(
        strategy=config.name, dates=list(history.dates), equity=equity, invested=invested, fills=fills,
        trades=list(book.trades), signals=signals_out, protection_events=events, vetoes=dict(vetoes),
        capital=capital, bars=history.bars, strategy_seconds=strategy_seconds,
    )  # fmt: skip
    result.metrics = compute_metrics(equity, [t.pnl for t in book.trades], invested)
    result.metrics["fills"] = float(len(fills))
    result.seconds = time.perf_counter() - started
    return result


def _record_transitions(status: ProtectionStatus, active: dict[tuple[str, str], bool],
                        events: list[dict[str, Any]], day: date) -> None:
    """Append an event when a protection switches on (REDUCING starts, a symbol's cooldown starts)."""
    now = {("max_drawdown", "")} if status.reducing else set()
    now |= {("loss_streak", s) for s in status.cooldowns}
    for key in now - set(active):
        protection, symbol = key
        reason = status.reason if protection == "max_drawdown" else status.cooldowns[symbol][1]
        events.append({"session_date": day, "protection": protection, "symbol": symbol or None, "reason": reason,
                       "drawdown": round(status.drawdown, 6) if protection == "max_drawdown" else None})
    active.clear()
    active.update(dict.fromkeys(now, True))
