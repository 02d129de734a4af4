"""After a BUY, the symbol's position may not exceed ``max_position_notional`` dollars (at the last price)."""

from __future__ import annotations

from include.risk.checks.base import RunTally, ok, veto
from include.risk.limits import RiskLimits
from include.risk.models import CheckResult, OrderProposal, RiskContext


class MaxPositionNotional:
    name = "max_position_notional"

    def check(self, order: OrderProposal, ctx: RiskContext, limits: RiskLimits, run: RunTally) -> CheckResult:
        if order.side == "SELL":
            return ok(self.name, "SELL does not grow the position")
        after = order.position_notional + run.added_position.get(order.symbol, 0.0) + order.notional
        if after > limits.max_position_notional:
            return veto(self.name, f"position would be ${after:,.2f} > max_position_notional "
                        f"${limits.max_position_notional:,.2f} (now ${order.position_notional:,.2f})")
        return ok(self.name, f"position after ${after:,.2f} <= ${limits.max_position_notional:,.2f}")
