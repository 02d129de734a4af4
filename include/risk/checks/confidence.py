"""Veto signals whose confidence is below the strategy's ``min_confidence`` (default 0.7)."""

from __future__ import annotations

from include.risk.checks.base import RunTally, ok, veto
from include.risk.limits import RiskLimits
from include.risk.models import CheckResult, OrderProposal, RiskContext


class MinConfidence:
    name = "min_confidence"

    def check(self, order: OrderProposal, ctx: RiskContext, limits: RiskLimits, run: RunTally) -> CheckResult:
        if order.confidence < limits.min_confidence:
            return veto(self.name, f"confidence {order.confidence:.4f} < min_confidence {limits.min_confidence:g}")
        return ok(self.name, f"confidence {order.confidence:.4f} >= {limits.min_confidence:g}")
