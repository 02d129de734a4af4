"""Loss streak: N losing round trips of one symbol within a window put it in cooldown (no new entries)."""

from __future__ import annotations

from collections.abc import Iterable

from include.risk.protections.config import LossStreakProtection
from include.risk.protections.round_trips import ClosedTrade


def cooldowns(streak: LossStreakProtection, trades: Iterable[ClosedTrade], session: int) -> dict[str, tuple[int, str]]:
    """symbol -> (last blocked session, why) for the symbols in cooldown at ``session``."""
    out: dict[str, tuple[int, str]] = {}
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
                out[symbol] = (until, f"{n} losing trades within {streak.window_sessions} sessions "
                                      f"(last exit at session {exits[j]}); no entries through session "
                                      f"{until} ({streak.cooldown_sessions} sessions)")
                break
    return out
