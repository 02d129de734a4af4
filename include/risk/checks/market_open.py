"""Veto orders while the exchange is closed (an input flag, or the exchange calendar at assessment time)."""

from __future__ import annotations

from include.risk.checks.base import RunTally, ok, veto
from include.risk.limits import RiskLimits
from include.risk.models import CheckResult, OrderProposal, RiskContext


class MarketOpen:
    name = "market_open"

    def check(self, order: OrderProposal, ctx: RiskContext, limits: RiskLimits, run: RunTally) -> CheckResult:
        if not ctx.market_open:
            return veto(self.name, f"market closed ({ctx.market_open_source})")
        return ok(self.name, f"market open ({ctx.market_open_source})")
