"""After a BUY, gross exposure may not exceed ``max_gross_exposure`` dollars nor ``max_gross_leverage`` x net
liquidation (when the account's net liquidation is known)."""

from __future__ import annotations

from include.risk.checks.base import RunTally, ok, veto
from include.risk.limits import RiskLimits
from include.risk.models import CheckResult, OrderProposal, RiskContext
from include.risk.sizing import gross_cap


class MaxGrossExposure:
    name = "max_gross_exposure"

    def check(self, order: OrderProposal, ctx: RiskContext, limits: RiskLimits, run: RunTally) -> CheckResult:
        if order.side == "SELL":
            return ok(self.name, "SELL does not add exposure")
        cap, basis = gross_cap(ctx, limits)
        after = ctx.gross_position_value + run.added_gross + order.notional
        if after > cap:
            return veto(self.name, f"gross exposure would be ${after:,.2f} > ${cap:,.2f} ({basis})")
        return ok(self.name, f"gross exposure after ${after:,.2f} <= ${cap:,.2f} ({basis})")
