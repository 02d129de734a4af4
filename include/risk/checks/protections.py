"""Strategy protections (``include.risk.protections``): REDUCING after a max drawdown, a symbol's cooldown after a
loss streak. Holds the status evaluated for one strategy, so it only affects that strategy's decisions (the
global kill switch, ``trading_state``, is a separate check); the backtest runs this same check."""

from __future__ import annotations

from include.risk.checks.base import RunTally, ok, veto
from include.risk.limits import RiskLimits
from include.risk.models import CheckResult, OrderProposal, RiskContext
from include.risk.protections import ProtectionStatus


class ProtectionGate:
    name = "protections"

    def __init__(self, status: ProtectionStatus | None = None) -> None:
        self.status = status

    def check(self, order: OrderProposal, ctx: RiskContext, limits: RiskLimits, run: RunTally) -> CheckResult:
        if self.status is None:
            return ok(self.name, "no protections configured")
        reason = self.status.blocks(order.side, order.symbol, order.reduces_position)
        if reason:
            return veto(self.name, reason)
        return ok(self.name, f"protections clear (drawdown {self.status.drawdown:.2%})")
