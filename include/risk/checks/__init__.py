"""Risk checks, one per file; ``DEFAULT_CHECKS`` is the order they run in (all run: every veto is recorded)."""

from include.risk.checks.base import RiskCheck, RunTally
from include.risk.checks.confidence import MinConfidence
from include.risk.checks.data_quality import DataQualityGate
from include.risk.checks.gross_exposure import MaxGrossExposure
from include.risk.checks.long_only import LongOnly
from include.risk.checks.market_open import MarketOpen
from include.risk.checks.order_count import MaxOrdersPerDay, MaxOrdersPerRun
from include.risk.checks.order_notional import MaxOrderNotional
from include.risk.checks.paper_account import PaperAccountOnly
from include.risk.checks.position_limit import MaxPositionNotional
from include.risk.checks.price_collar import PriceCollar
from include.risk.checks.protections import ProtectionGate
from include.risk.checks.quantity import WholeShares
from include.risk.checks.trading_state import TradingStateGate

DEFAULT_CHECKS: tuple[RiskCheck, ...] = (
    TradingStateGate(), PaperAccountOnly(), MarketOpen(), DataQualityGate(), MinConfidence(), LongOnly(),
    PriceCollar(), WholeShares(), MaxOrderNotional(), MaxPositionNotional(), MaxGrossExposure(),
    MaxOrdersPerRun(), MaxOrdersPerDay(),
)  # fmt: skip

__all__ = [
    "DEFAULT_CHECKS",
    "DataQualityGate",
    "LongOnly",
    "MarketOpen",
    "MaxGrossExposure",
    "MaxOrderNotional",
    "MaxOrdersPerDay",
    "MaxOrdersPerRun",
    "MaxPositionNotional",
    "MinConfidence",
    "PaperAccountOnly",
    "PriceCollar",
    "ProtectionGate",
    "RiskCheck",
    "RunTally",
    "TradingStateGate",
    "WholeShares",
]
