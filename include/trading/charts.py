"""Per-symbol PNG chart: candles with SMA-20/50 and Bollinger bands, volume, RSI and MACD, the signal marked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

HISTORY_SQL = """
SELECT f.session_date, b.open, b.high, b.low, f.close, b.volume, f.sma_20, f.sma_50, f.bb_upper, f.bb_lower,
       f.rsi_14, f.macd, f.macd_signal, f.macd_hist
FROM analytics_marts.fct_daily_indicators f
JOIN analytics_intermediate.int_daily_bars_enriched b USING (symbol, session_date)
WHERE f.symbol = %s ORDER BY f.session_date DESC LIMIT %s
"""

_COLORS = {"BUY": "tab:green", "SELL": "tab:red", "HOLD": "tab:gray"}


def load_history(conn: Any, symbol: str, sessions: int = 120) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(HISTORY_SQL, (symbol, sessions))
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    return rows[::-1]


def render_chart(symbol: str, rows: list[dict[str, Any]], signal: dict[str, Any], path: Path) -> Path:
    """Write the chart to ``path`` (PNG) and return it. ``rows`` are oldest first."""
    import matplotlib

    matplotlib.use("Agg")  # no display in a worker
    import matplotlib.pyplot as plt

    if not rows:
        raise ValueError(f"{symbol}: no indicator rows to chart")
    x = list(range(len(rows)))
    col = {k: [r[k] for r in rows] for k in rows[0]}
    fig, (ax, axv, axr, axm) = plt.subplots(4, 1, figsize=(10, 9), sharex=True,
                                            gridspec_kw={"height_ratios": [4, 1, 1.3, 1.3]})
    for i, r in enumerate(rows):  # candles: wick + body, green up, red down
        up = r["close"] >= r["open"]
        color = "tab:green" if up else "tab:red"
        ax.vlines(i, r["low"], r["high"], color=color, linewidth=0.8)
        ax.bar(i, abs(r["close"] - r["open"]) or 1e-9, bottom=min(r["open"], r["close"]), color=color, width=0.7)
    ax.plot(x, col["sma_20"], label="SMA 20", linewidth=1)
    ax.plot(x, col["sma_50"], label="SMA 50", linewidth=1)
    ax.fill_between(x, [v if v is not None else float("nan") for v in col["bb_lower"]],
                    [v if v is not None else float("nan") for v in col["bb_upper"]], alpha=0.12,
                    label="Bollinger 20, 2 sd")
    action = signal.get("action", "HOLD")
    ax.annotate(f"{action} {signal.get('confidence', 0):.2f}", xy=(x[-1], rows[-1]["close"]),
                xytext=(x[-1] - max(len(x) // 6, 1), rows[-1]["close"]),
                arrowprops={"arrowstyle": "->", "color": _COLORS.get(action, "black")},
                color=_COLORS.get(action, "black"), fontweight="bold")
    ax.set_title(f"{symbol} — {rows[-1]['session_date']} — {signal.get('strategy', '')}")
    ax.legend(loc="upper left", fontsize=8)
    axv.bar(x, col["volume"], color="tab:blue", width=0.7)
    axv.set_ylabel("volume")
    axr.plot(x, col["rsi_14"], color="tab:purple")
    axr.axhline(70, color="gray", linestyle="--", linewidth=0.6)
    axr.axhline(30, color="gray", linestyle="--", linewidth=0.6)
    axr.set_ylim(0, 100)
    axr.set_ylabel("RSI 14")
    axm.plot(x, col["macd"], label="MACD", linewidth=1)
    axm.plot(x, col["macd_signal"], label="signal", linewidth=1)
    axm.bar(x, [v or 0 for v in col["macd_hist"]], color="tab:gray", width=0.7)
    axm.set_ylabel("MACD")
    axm.set_xticks(x[:: max(len(x) // 8, 1)], [str(rows[i]["session_date"]) for i in x[:: max(len(x) // 8, 1)]],
                   rotation=30, fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=80)
    plt.close(fig)
    return path
