"""``protections:`` of a strategy in strategies.yaml: which protections are on and their thresholds."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MaxDrawdownProtection(_Strict):
    max_drawdown_pct: float = Field(0.15, gt=0, lt=1, description="drawdown from the peak (fraction) -> REDUCING")
    lookback_sessions: int | None = Field(None, ge=2, description="peak over the last N sessions; None = all")


class LossStreakProtection(_Strict):
    max_losing_trades: int = Field(3, ge=1, description="losing round trips of one symbol that trigger a cooldown")
    window_sessions: int = Field(20, ge=1, description="... when their exits fall within this many sessions")
    cooldown_sessions: int = Field(5, ge=1, description="no new entries in that symbol for this many sessions")


class ProtectionsConfig(_Strict):
    """``protections:`` of a strategy in strategies.yaml; a protection left out (null) is off."""

    capital: float | None = Field(None, gt=0, description="equity base; None = the strategy's max_gross_exposure")
    max_drawdown: MaxDrawdownProtection | None = None
    loss_streak: LossStreakProtection | None = None

    @property
    def enabled(self) -> bool:
        return self.max_drawdown is not None or self.loss_streak is not None
