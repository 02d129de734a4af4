"""Equity-curve and drawdown PNG of a backtest (matplotlib, Agg), like include/trading/charts.py."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from include.backtest.engine import BacktestResult


def drawdown_series(equity: list[float]) -> list[float]:
    """1 - E_t / running peak, per point (positive fractions)."""
    out, peak = [], float("-inf")
    for value in equity:
        peak = max(peak, value)
        out.append(1 - value / peak if peak > 0 else 0.0)
    return out


def render_equity_chart(result: BacktestResult, path: Path, title: str = "") -> Path:
    """Equity (with the starting capital) above, drawdown below; buys/sells marked on the equity curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not result.equity:
        raise ValueError("empty backtest: nothing to chart")
    dates = result.dates
    fig, (ax, axd) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1.2]})
    ax.plot(dates, result.equity, color="tab:blue", linewidth=1.1, label="equity")
    ax.axhline(result.capital, color="gray", linestyle="--", linewidth=0.7, label="capital")
    index = {d: i for i, d in enumerate(dates)}
    for side, color, marker in (("BUY", "tab:green", "^"), ("SELL", "tab:red", "v")):
        points = [(f["session_date"], result.equity[index[f["session_date"]]]) for f in result.fills
                  if f["side"] == side and f["session_date"] in index]
        if points:
            ax.scatter(*zip(*points, strict=True), color=color, marker=marker, s=14, label=side.lower(), zorder=3)
    m = result.metrics
    ax.set_title(title or f"{result.strategy}: total {m.get('total_return', 0):+.2%}, Sharpe "
                 f"{m.get('sharpe', 0):.2f}, max DD {m.get('max_drawdown', 0):.2%}")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_ylabel("$")
    dd = [-x for x in drawdown_series(result.equity)]
    axd.fill_between(dates, dd, 0, color="tab:red", alpha=0.35)
    axd.set_ylabel("drawdown")
    axd.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def render_walk_forward_chart(dates: list, equity: list[float], window_starts: list[int], capital: float, path: Path,
                              title: str = "") -> Path:
    """The stitched out-of-sample equity (window boundaries as dashed lines) above, its drawdown below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not equity:
        raise ValueError("empty walk-forward: nothing to chart")
    fig, (ax, axd) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1.2]})
    ax.plot(dates, equity, color="tab:blue", linewidth=1.1, label="out-of-sample equity (stitched)")
    ax.axhline(capital, color="gray", linestyle="--", linewidth=0.7, label="capital")
    for k, start in enumerate(window_starts):
        ax.axvline(dates[start], color="tab:orange", linestyle=":", linewidth=0.8,
                   label="window start" if k == 0 else None)
    ax.set_title(title or "walk-forward: out-of-sample equity")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_ylabel("$")
    axd.fill_between(dates, [-x for x in drawdown_series(equity)], 0, color="tab:red", alpha=0.35)
    axd.set_ylabel("drawdown")
    axd.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
