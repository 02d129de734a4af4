"""Backtest metrics against hand-computed values and against an independent pandas recomputation from the
fills (equity, round trips, metrics) for the shipped strategies."""

import math

import numpy as np
import pandas as pd
import pytest

from include.backtest.engine import CostModel, run_backtest
from include.backtest.metrics import compute_metrics
from include.config import get_strategy


def test_metrics_on_a_hand_computed_series():
    m = compute_metrics([100.0, 110.0, 99.0, 121.0], [5.0, -2.0, 3.0], [False, True, True, False])
    r = [0.1, -0.1, 121 / 99 - 1]  # daily returns
    mean = sum(r) / 3
    std = math.sqrt(sum((x - mean) ** 2 for x in r) / 2)
    assert m["total_return"] == pytest.approx(0.21)
    assert m["cagr"] == pytest.approx(1.21 ** (252 / 3) - 1)
    assert m["sharpe"] == pytest.approx(mean / std * math.sqrt(252))
    assert m["sortino"] == pytest.approx(mean / math.sqrt(0.01 / 3) * math.sqrt(252))
    assert m["max_drawdown"] == pytest.approx(0.1)  # 110 -> 99
    assert m["win_rate"] == pytest.approx(2 / 3) and m["trade_count"] == 3
    assert m["exposure"] == 0.5


def test_metrics_of_a_flat_curve():
    m = compute_metrics([100.0] * 5, [], [False] * 5)
    assert (m["total_return"], m["sharpe"], m["sortino"], m["max_drawdown"], m["win_rate"], m["exposure"]) \
        == (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def _independent(result, history, costs: CostModel):
    """Equity, round trips and metrics from the fills and the mart closes, with pandas only."""
    rows = [{"session_date": r["session_date"], "symbol": s, "open": r["open"], "close": r["close"]}
            for s, sh in history.symbols.items() for r in sh.rows]
    bars = pd.DataFrame(rows)
    closes = bars.pivot(index="session_date", columns="symbol", values="close").sort_index().ffill()
    opens = bars.set_index(["session_date", "symbol"])["open"]
    fills = pd.DataFrame(result.fills)
    slip = costs.slippage_bps / 1e4
    # fill prices and commissions re-derived from the raw opens
    sign = np.where(fills["side"] == "BUY", 1.0, -1.0)
    expected_price = [opens[(d, s)] for d, s in zip(fills["session_date"], fills["symbol"], strict=True)]
    expected_price = np.asarray(expected_price) * (1 + sign * slip)
    np.testing.assert_allclose(fills["price"], expected_price, rtol=1e-12)
    value = fills["quantity"] * fills["price"]
    commission = np.minimum(np.maximum(costs.commission_min, costs.commission_per_share * fills["quantity"]),
                            costs.commission_max_pct * value)
    np.testing.assert_allclose(fills["commission"], commission, rtol=1e-12)
    assert (fills["signal_date"] < fills["session_date"]).all()  # decided at a close, filled at a later open
    # equity = cash + positions x close
    cash_flow = (-sign * value - commission).groupby(fills["session_date"]).sum()
    cash = result.capital + cash_flow.reindex(closes.index, fill_value=0.0).cumsum()
    qty = (sign * fills["quantity"]).groupby([fills["session_date"], fills["symbol"]]).sum().unstack(fill_value=0.0)
    held = qty.reindex(index=closes.index, columns=closes.columns, fill_value=0.0).cumsum()
    equity = cash + (held * closes.fillna(0.0)).sum(axis=1)
    # round trips: flat -> flat per symbol
    pnls = []
    for _, f in fills.groupby("symbol", sort=False):
        position, pnl = 0.0, 0.0
        for side, q, p, c in zip(f["side"], f["quantity"], f["price"], f["commission"], strict=True):
            position += q if side == "BUY" else -q
            pnl += (-q * p if side == "BUY" else q * p) - c
            if abs(position) < 1e-9:
                pnls.append(pnl)
                position, pnl = 0.0, 0.0
    returns = equity.pct_change().dropna()
    downside = np.sqrt((returns.clip(upper=0) ** 2).mean())
    metrics = {
        "total_return": equity.iloc[-1] / equity.iloc[0] - 1,
        "cagr": (equity.iloc[-1] / equity.iloc[0]) ** (252 / (len(equity) - 1)) - 1,
        "sharpe": returns.mean() / returns.std(ddof=1) * np.sqrt(252),
        "sortino": returns.mean() / downside * np.sqrt(252),
        "max_drawdown": (1 - equity / equity.cummax()).max(),
        "win_rate": (np.array(pnls) > 0).mean() if pnls else 0.0,
        "trade_count": float(len(pnls)),
        "exposure": ((held.abs() > 1e-9).any(axis=1)).mean(),
    }
    return equity, sorted(pnls), metrics


@pytest.mark.parametrize("strategy_id", [1, 2, 3], ids=["sma_crossover", "rsi_mean_reversion", "macd_momentum"])
def test_shipped_strategy_metrics_equal_an_independent_calculation(mart_history, strategy_id):
    config = get_strategy(strategy_id)
    costs = CostModel(commission_per_share=0.01, commission_min=1.5, slippage_bps=7.5)
    result = run_backtest(config, mart_history, costs)
    assert len(result.fills) >= 5, result.vetoes  # the strategy really traded
    equity, pnls, metrics = _independent(result, mart_history, costs)
    np.testing.assert_allclose(result.equity, equity.to_numpy(), rtol=1e-10)
    assert sorted(t.pnl for t in result.trades) == pytest.approx(pnls, rel=1e-10)
    for name, value in metrics.items():
        assert result.metrics[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
