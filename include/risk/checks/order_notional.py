"""One order may not exceed ``max_order_notional`` dollars (quantity x limit price)."""

from __future__ import annotations

from include.risk.checks.base import RunTally, ok, veto
from include.risk.limits import RiskLimits
from include.risk.models import CheckResult, OrderProposal, RiskContext


class MaxOrderNotional:
    name = "max_order_notional"

    def check(self, order: OrderProposal, ctx: RiskContext, limits: RiskLimits, run: RunTally) -> CheckResult:
        if order.notional > limits.max_order_notional:
            return veto(self.name, f"order ${order.notional:,.2f} > max_order_notional "
                        f"${limits.max_order_notional:,.2f}")
        return ok(self.name, f"order ${order.notional:,.2f} <= ${limits.max_order_notional:,.2f}")
