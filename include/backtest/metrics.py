"""Performance metrics of a daily equity curve and its round trips (risk-free rate 0, 252 sessions a year).
Formulas: docs/backtesting.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

PERIODS_PER_YEAR = 252
# Metrics a sweep may rank by, and whether higher is better.
RANKABLE = {"sharpe": True, "sortino": True, "cagr": True, "total_return": True, "max_drawdown": False,
            "win_rate": True}  # fmt: skip


def compute_metrics(equity: Sequence[float], trade_pnls: Sequence[float], invested: Sequence[bool],
                    periods_per_year: int = PERIODS_PER_YEAR) -> dict[str, float]:
    n = len(equity)
    if n == 0:
        raise ValueError("no equity points: the history is empty")
    first, last = equity[0], equity[-1]
    total = last / first - 1
    years = (n - 1) / periods_per_year
    cagr = (last / first) ** (1 / years) - 1 if years > 0 and last > 0 else 0.0
    returns = [equity[t] / equity[t - 1] - 1 for t in range(1, n)]
    sharpe = sortino = 0.0
    if len(returns) >= 2:
        mean = sum(returns) / len(returns)
        std = math.sqrt(sum((r - mean) ** 2 for r in returns) / (len(returns) - 1))
        downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
        root = math.sqrt(periods_per_year)
        sharpe = mean / std * root if std > 0 else 0.0
        sortino = mean / downside * root if downside > 0 else (0.0 if std == 0 else math.nan)
    peak, max_dd = -math.inf, 0.0
    for value in equity:
        peak = max(peak, value)
        max_dd = max(max_dd, 1 - value / peak if peak > 0 else 0.0)
    wins = sum(p > 0 for p in trade_pnls)
    return {
        "total_return": total, "cagr": cagr, "sharpe": sharpe, "sortino": sortino, "max_drawdown": max_dd,
        "win_rate": wins / len(trade_pnls) if trade_pnls else 0.0, "trade_count": float(len(trade_pnls)),
        "exposure": sum(bool(x) for x in invested) / len(invested) if invested else 0.0,
        "final_equity": last, "sessions": float(n),
    }  # fmt: skip
