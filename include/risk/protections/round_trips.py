"""Fills -> round trips (flat -> long -> flat per symbol, commissions included), for backtests and live."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

_EPS = 1e-9


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
