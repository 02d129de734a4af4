"""The symbol's data-quality verdict must be ``pass``; ``warn`` allows only SELLs that reduce a long position;
``fail`` or no verdict vetoes."""

from __future__ import annotations

from include.risk.checks.base import RunTally, ok, veto
from include.risk.limits import RiskLimits
from include.risk.models import CheckResult, OrderProposal, RiskContext


class DataQualityGate:
    name = "data_quality"

    def check(self, order: OrderProposal, ctx: RiskContext, limits: RiskLimits, run: RunTally) -> CheckResult:
        verdict = ctx.verdicts.get(order.symbol)
        if verdict is None:
            return veto(self.name, f"no data-quality verdict for {order.symbol}")
        why = f": {'; '.join(verdict.reasons)}" if verdict.reasons else ""
        if verdict.verdict == "pass":
            return ok(self.name, "data quality pass")
        if verdict.verdict == "warn":
            if order.side == "SELL" and order.reduces_position:
                return ok(self.name, f"data quality warn{why}; exit allowed (reduces a long position)")
            return veto(self.name, f"data quality warn{why}; only exits that reduce a long position are allowed")
        return veto(self.name, f"data quality fail{why}")
