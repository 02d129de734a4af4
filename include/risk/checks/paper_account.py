"""In paper mode the account must be an IBKR paper account (ids start with ``DU``): never trade a live account
by mistake because a strategy was switched to paper."""

from __future__ import annotations

from include.risk.checks.base import RunTally, ok, veto
from include.risk.limits import RiskLimits
from include.risk.models import CheckResult, OrderProposal, RiskContext


class PaperAccountOnly:
    name = "paper_account"

    def check(self, order: OrderProposal, ctx: RiskContext, limits: RiskLimits, run: RunTally) -> CheckResult:
        if ctx.mode != "paper":
            return ok(self.name, f"mode {ctx.mode}: no paper-account requirement")
        if not ctx.account_id or not ctx.account_id.startswith("DU"):
            return veto(self.name, f"paper mode needs a paper account (DU...), got {ctx.account_id!r}")
        return ok(self.name, f"paper account {ctx.account_id}")
