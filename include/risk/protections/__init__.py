"""Per-strategy protections (freqtrade style), one code path for backtests and live trading: one protection per
module (``max_drawdown``, ``loss_streak``), their config, the round-trip book, ``evaluate`` and the live replay.
Rationale and semantics: docs/protections.md."""

from include.risk.protections.config import LossStreakProtection, MaxDrawdownProtection, ProtectionsConfig
from include.risk.protections.live import LiveProtections, evaluate_live, live_status, record_events
from include.risk.protections.max_drawdown import drawdown
from include.risk.protections.round_trips import ClosedTrade, RoundTripBook
from include.risk.protections.status import ProtectionStatus, evaluate

__all__ = [
    "ClosedTrade", "LiveProtections", "LossStreakProtection", "MaxDrawdownProtection", "ProtectionStatus",
    "ProtectionsConfig", "RoundTripBook", "drawdown", "evaluate", "evaluate_live", "live_status", "record_events",
]  # fmt: skip
