"""Long only: a SELL must reduce an existing long position (never open a short)."""

from __future__ import annotations

from include.risk.checks.base import RunTally, ok, veto
from include.risk.limits import RiskLimits
from include.risk.models import CheckResult, OrderProposal, RiskContext


class LongOnly:
    name = "long_only"

    def check(self, order: OrderProposal, ctx: RiskContext, limits: RiskLimits, run: RunTally) -> CheckResult:
        if order.side == "SELL" and order.position_qty <= 0:
            return veto(self.name, f"SELL {order.symbol} without a long position (held {order.position_qty:g}) "
                        "would open a short")
        if order.side == "SELL" and order.quantity > order.position_qty:
            return veto(self.name, f"SELL {order.quantity} > {order.position_qty:g} held would flip to short")
        return ok(self.name, "long-only respected")
