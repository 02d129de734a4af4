"""Protections: the pure evaluation, and the same code inside the backtest loop (drawdown -> exits only;
loss streak -> no entries in that symbol for the cooldown)."""

from datetime import date, timedelta

import pytest

from include.backtest.engine import CostModel, History, apply_overrides, run_backtest
from include.config.models import StrategyConfig
from include.risk.protections import (
    ClosedTrade,
    LossStreakProtection,
    MaxDrawdownProtection,
    ProtectionsConfig,
    RoundTripBook,
    evaluate,
)

DD = ProtectionsConfig(max_drawdown=MaxDrawdownProtection(max_drawdown_pct=0.1, lookback_sessions=5))
STREAK = ProtectionsConfig(loss_streak=LossStreakProtection(max_losing_trades=2, window_sessions=10,
                                                            cooldown_sessions=3))


def test_drawdown_threshold_and_lookback():
    assert not evaluate(DD, session=3, equity=[100, 105, 100, 95], trades=[]).reducing  # 9.5 % < 10 %
    status = evaluate(DD, session=4, equity=[100, 105, 100, 95, 94.5], trades=[])
    assert status.reducing and status.drawdown == pytest.approx(0.1) and "drawdown 10.00%" in status.reason
    assert status.blocks("BUY", "X", reduces_position=False).startswith("protection max_drawdown")
    assert status.blocks("SELL", "X", reduces_position=True) is None  # exits pass
    # the 105 peak leaves the 5-session window: no longer REDUCING
    assert not evaluate(DD, session=6, equity=[100, 105, 100, 95, 94.5, 94.5, 94.5], trades=[]).reducing


def _loss(symbol, exit_session, pnl=-10.0):
    return ClosedTrade(symbol=symbol, entry_session=exit_session - 1, exit_session=exit_session, pnl=pnl)


def test_loss_streak_cooldown_window_and_expiry():
    trades = [_loss("A", 2), _loss("A", 11), _loss("B", 5), ClosedTrade("A", 12, 13, 50.0)]
    assert evaluate(STREAK, session=11, equity=[1], trades=trades).cooldowns.keys() == {"A"}  # 11 - 2 < 10
    assert "A" not in evaluate(STREAK, session=14, equity=[1], trades=trades).cooldowns  # sessions 11..13 only
    status = evaluate(STREAK, session=13, equity=[1], trades=trades)
    assert status.cooldowns["A"][0] == 13 and status.blocks("BUY", "A", False).startswith("protection loss_streak")
    assert status.blocks("BUY", "B", False) is None and status.blocks("SELL", "A", True) is None
    far = [_loss("A", 2), _loss("A", 12)]  # 10 sessions apart: not within the window
    assert evaluate(STREAK, session=12, equity=[1], trades=far).cooldowns == {}


def test_round_trip_book_counts_flat_to_flat_with_commissions():
    book = RoundTripBook()
    assert book.fill("A", "BUY", 10, 100.0, 1.0, 0) is None
    assert book.fill("A", "BUY", 10, 110.0, 1.0, 1) is None
    assert book.fill("A", "SELL", 5, 120.0, 1.0, 2) is None
    assert book.equity(1000.0, {"A": 100.0}) == pytest.approx(1000 - 1000 - 1 - 1100 - 1 + 600 - 1 + 15 * 100)
    trade = book.fill("A", "SELL", 50, 90.0, 1.0, 3)  # capped at the 15 held
    assert trade.pnl == pytest.approx(-2100 - 2 + 600 - 1 + 1350 - 1) and trade.quantity == 20
    assert book.qty == {} and book.realised == pytest.approx(trade.pnl)


def _config(**protections):
    return StrategyConfig.model_validate({
        "id": 9, "name": "rsi_test", "symbols": ["A", "B"], "schedule": "@daily", "protections": protections,
        "signal": {"model": "rsi_mean_reversion", "oversold": 30, "overbought": 70, "full_confidence_distance": 15},
        "risk": {"min_confidence": 0.5, "max_order_notional": 1000, "max_position_notional": 1000,
                 "max_gross_exposure": 10000, "price_collar_pct": 0.05},
    })  # fmt: skip


def _history(series):
    """``series``: symbol -> list of (price, rsi); open = close = price."""
    start = date(2024, 1, 1)
    rows = [{"symbol": s, "session_date": start + timedelta(days=i), "open": p, "close": p, "rsi_14": rsi}
            for s, points in series.items() for i, (p, rsi) in enumerate(points)]
    return History.from_rows(rows)


FREE = CostModel(commission_per_share=0, commission_min=0, slippage_bps=0)


def test_drawdown_switches_the_backtest_to_exits_only():
    # A is bought on day 0's signal, crashes 40 %: drawdown of the 2,000 equity ~ 20 % > 10 %.
    a = [(100, 10), (100, 50), (60, 50), (60, 50), (60, 50), (60, 90), (60, 50)]
    b = [(50, 50), (50, 50), (50, 50), (50, 10), (50, 10), (50, 10), (50, 10)]
    config = _config(capital=2000, max_drawdown={"max_drawdown_pct": 0.1})
    result = run_backtest(config, _history({"A": a, "B": b}), FREE)
    crash = date(2024, 1, 3)
    assert [(e["protection"], e["session_date"]) for e in result.protection_events] == [("max_drawdown", crash)]
    assert result.vetoes["protections"] == 4  # B's BUYs on days 3..6
    assert [(f["symbol"], f["side"], f["session_date"]) for f in result.fills] == [
        ("A", "BUY", date(2024, 1, 2)), ("A", "SELL", date(2024, 1, 7))]  # the exit still goes through
    unprotected = run_backtest(apply_overrides(config, {"protections.max_drawdown": None}),
                               _history({"A": a, "B": b}), FREE)
    assert any(f["symbol"] == "B" and f["side"] == "BUY" for f in unprotected.fills)


def test_loss_streak_puts_the_symbol_in_cooldown():
    # Each BUY (RSI 10) fills at the next open, each SELL (RSI 90) too; the price steps down: every trade loses.
    points = [(100, 10), (100, 90), (95, 10), (95, 90), (90, 10), (90, 90), (85, 10), (85, 50), (85, 10), (85, 10),
              (85, 50), (85, 50)]
    config = _config(loss_streak={"max_losing_trades": 2, "window_sessions": 10, "cooldown_sessions": 3})
    result = run_backtest(config, _history({"A": points}), FREE)
    buys = [f["session_date"] for f in result.fills if f["side"] == "BUY"]
    # losses exit at sessions 2 and 4 (a streak of 2): cooldown for sessions 4..6, so the BUY signals of
    # sessions 4 and 6 are vetoed and session 8's fills at session 9's open
    assert [t.pnl < 0 for t in result.trades] == [True, True]
    assert buys == [date(2024, 1, 2), date(2024, 1, 4), date(2024, 1, 10)]
    assert [(e["protection"], e["symbol"], e["session_date"]) for e in result.protection_events] == [
        ("loss_streak", "A", date(2024, 1, 5))]
    assert result.vetoes["protections"] == 2
