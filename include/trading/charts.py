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


def _series(rows: list[dict[str, Any]], key: str) -> Any:
    import numpy as np

    return np.array([np.nan if r[key] is None else float(r[key]) for r in rows], dtype=float)


class ChartRenderer:
    """One figure for every chart of a run: axes, ticks and fixed lines are built once and each chart only swaps
    the data artists (about a third of the cost of a new figure per chart). Agg canvas without pyplot, every bar
    series one line collection (not a Rectangle per bar), a fixed layout instead of ``tight_layout``."""

    def __init__(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.fig = Figure(figsize=(10, 9))
        FigureCanvasAgg(self.fig)
        self.axes = self.fig.subplots(4, 1, sharex=True, gridspec_kw={"height_ratios": [4, 1, 1.3, 1.3]})
        self.fig.subplots_adjust(left=0.08, right=0.98, top=0.95, bottom=0.08, hspace=0.12)
        _, axv, axr, axm = self.axes
        axv.set_ylabel("volume")
        axr.axhline(70, color="gray", linestyle="--", linewidth=0.6)
        axr.axhline(30, color="gray", linestyle="--", linewidth=0.6)
        axr.set_ylim(0, 100)
        axr.set_ylabel("RSI 14")
        axm.set_ylabel("MACD")
        self._fixed = {id(a) for ax in self.axes for a in (*ax.lines, *ax.collections, *ax.texts)}

    def _clear_data(self) -> None:
        for ax in self.axes:
            for artist in [*ax.lines, *ax.collections, *ax.texts]:
                if id(artist) not in self._fixed:
                    artist.remove()
            if ax.get_legend() is not None:
                ax.get_legend().remove()
            ax.ignore_existing_data_limits = True  # limits from this chart's data only
            ax.relim()  # the fixed lines (RSI 30/70) count again

    def render(self, symbol: str, rows: list[dict[str, Any]], signal: dict[str, Any], path: Path) -> Path:
        """Write the chart to ``path`` (PNG) and return it. ``rows`` are oldest first."""
        import numpy as np

        if not rows:
            raise ValueError(f"{symbol}: no indicator rows to chart")
        self._clear_data()
        ax, axv, axr, axm = self.axes
        x = np.arange(len(rows))
        o, h, lo, c = (_series(rows, k) for k in ("open", "high", "low", "close"))
        width = 0.7 * 0.9 * self.fig.get_figwidth() * 72 / max(len(rows), 1)  # bars 0.7 of a slot wide, in points
        colors = np.where(c >= o, "tab:green", "tab:red")  # candles: wick + body, green up, red down
        ax.vlines(x, lo, h, colors=colors, linewidth=0.8)
        ax.vlines(x, np.minimum(o, c), np.maximum(o, c), colors=colors, linewidth=width)
        ax.plot(x, _series(rows, "sma_20"), label="SMA 20", linewidth=1, color="tab:blue")
        ax.plot(x, _series(rows, "sma_50"), label="SMA 50", linewidth=1, color="tab:orange")
        ax.fill_between(x, _series(rows, "bb_lower"), _series(rows, "bb_upper"), alpha=0.12, color="tab:blue",
                        label="Bollinger 20, 2 sd")
        action = signal.get("action", "HOLD")
        ax.annotate(f"{action} {signal.get('confidence', 0):.2f}", xy=(x[-1], c[-1]),
                    xytext=(x[-1] - max(len(x) // 6, 1), c[-1]),
                    arrowprops={"arrowstyle": "->", "color": _COLORS.get(action, "black")},
                    color=_COLORS.get(action, "black"), fontweight="bold")
        ax.set_title(f"{symbol} — {rows[-1]['session_date']} — {signal.get('strategy', '')}")
        ax.legend(loc="upper left", fontsize=8)
        axv.vlines(x, 0, _series(rows, "volume"), colors="tab:blue", linewidth=width)
        axr.plot(x, _series(rows, "rsi_14"), color="tab:purple")
        axm.plot(x, _series(rows, "macd"), label="MACD", linewidth=1, color="tab:blue")
        axm.plot(x, _series(rows, "macd_signal"), label="signal", linewidth=1, color="tab:orange")
        axm.vlines(x, 0, np.nan_to_num(_series(rows, "macd_hist")), colors="tab:gray", linewidth=width)
        for a in self.axes:
            a.autoscale_view()
        axr.set_ylim(0, 100)
        ticks = x[:: max(len(x) // 8, 1)]
        axm.set_xticks(ticks, [str(rows[i]["session_date"]) for i in ticks], rotation=30, fontsize=7)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fig.savefig(path, format="png", dpi=80)
        return path
