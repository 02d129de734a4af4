"""Max drawdown: the strategy goes REDUCING (exits only) while its equity is too far below its peak."""

from __future__ import annotations

from collections.abc import Sequence

from include.risk.protections.config import MaxDrawdownProtection

_EPS = 1e-9


def drawdown(equity: Sequence[float], lookback: int | None = None) -> tuple[float, float, float]:
    """``(drawdown, equity, peak)`` at the last point of ``equity``; the peak over the last ``lookback`` points."""
    window = equity[-lookback:] if lookback else equity
    peak, now = max(window), equity[-1]
    return (1.0 - now / peak if peak > 0 else 0.0), now, peak


def check_max_drawdown(rule: MaxDrawdownProtection, equity: Sequence[float]) -> tuple[bool, float, float, float, str]:
    """``(reducing, drawdown, equity, peak, reason)`` at the last point of ``equity``."""
    dd, now, peak = drawdown(equity, rule.lookback_sessions)
    if dd < rule.max_drawdown_pct - _EPS:
        return False, dd, now, peak, ""
    over = f"last {rule.lookback_sessions} sessions" if rule.lookback_sessions else "all sessions"
    return True, dd, now, peak, (f"drawdown {dd:.2%} >= {rule.max_drawdown_pct:.2%} (equity {now:,.2f}, peak "
                                 f"{peak:,.2f} over {over})")
