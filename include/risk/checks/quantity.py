"""The order must be at least one whole share (quantity comes from dollars / price, floored)."""

from __future__ import annotations

from include.risk.checks.base import RunTally, ok, veto
from include.risk.limits import RiskLimits
from include.risk.models import CheckResult, OrderProposal, RiskContext


class WholeShares:
    name = "quantity"

    def check(self, order: OrderProposal, ctx: RiskContext, limits: RiskLimits, run: RunTally) -> CheckResult:
        if order.quantity < 1:
            return veto(self.name, f"zero shares: {order.sizing}")
        return ok(self.name, f"{order.quantity} sh: {order.sizing}")
