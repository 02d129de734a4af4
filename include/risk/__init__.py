"""Risk: limits, pluggable veto checks, sizing and the kill switch. Every order comes out of ``assess``;
strategies only emit signals and cannot size, approve or place orders themselves."""

from include.risk.engine import LiveTradingNotAllowed, RiskReport, assess, build_context, require_live_opt_in
from include.risk.limits import RiskLimits
from include.risk.models import Position, QualityVerdict, RiskDecision, TradingState

__all__ = [
    "LiveTradingNotAllowed",
    "Position",
    "QualityVerdict",
    "RiskDecision",
    "RiskLimits",
    "RiskReport",
    "TradingState",
    "assess",
    "build_context",
    "require_live_opt_in",
]
