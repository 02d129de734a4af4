"""``evaluate``: the protections' verdict at one session (a pure function), as a ``ProtectionStatus``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from include.risk.protections.config import ProtectionsConfig
from include.risk.protections.loss_streak import cooldowns as loss_streak_cooldowns
from include.risk.protections.max_drawdown import check_max_drawdown
from include.risk.protections.round_trips import ClosedTrade


@dataclass(frozen=True)
class ProtectionStatus:
    """The protections' verdict at one session: REDUCING (exits only) and the symbols in cooldown."""

    session: int
    reducing: bool = False
    drawdown: float = 0.0
    equity: float | None = None
    peak: float | None = None
    reason: str = ""
    cooldowns: Mapping[str, tuple[int, str]] = field(default_factory=dict)  # symbol -> (last blocked session, why)

    def blocks(self, side: str, symbol: str, reduces_position: bool) -> str | None:
        """Why this order is not allowed (None: allowed). Exits are never blocked."""
        if reduces_position:
            return None
        if self.reducing:
            return f"protection max_drawdown: strategy REDUCING (exits only): {self.reason}"
        if side == "BUY" and symbol in self.cooldowns:
            return f"protection loss_streak: {symbol} in cooldown: {self.cooldowns[symbol][1]}"
        return None

    def events(self) -> list[dict[str, Any]]:
        """What is active now, as records (protection, symbol, reason, numbers)."""
        out = []
        if self.reducing:
            out.append({"protection": "max_drawdown", "symbol": None, "reason": self.reason,
                        "drawdown": round(self.drawdown, 6), "equity": self.equity, "peak": self.peak})
        for symbol, (until, why) in sorted(self.cooldowns.items()):
            out.append({"protection": "loss_streak", "symbol": symbol, "reason": why, "until_session": until})
        return out


def evaluate(config: ProtectionsConfig, *, session: int, equity: Sequence[float],
             trades: Iterable[ClosedTrade]) -> ProtectionStatus:
    """The protections' state at the close of ``session``: ``equity`` is the strategy's equity per session up to
    and including it, ``trades`` the round trips closed so far (older ones may be left out: only exits within
    ``window_sessions + cooldown_sessions`` sessions matter)."""
    reducing, dd, now, peak, reason = False, 0.0, None, None, ""
    if config.max_drawdown is not None and equity:
        reducing, dd, now, peak, reason = check_max_drawdown(config.max_drawdown, equity)
    cooldowns = loss_streak_cooldowns(config.loss_streak, trades, session) if config.loss_streak else {}
    return ProtectionStatus(session=session, reducing=reducing, drawdown=dd, equity=now, peak=peak, reason=reason,
                            cooldowns=cooldowns)
