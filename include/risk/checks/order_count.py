"""Caps on the number of orders: per strategy run, and per day including orders placed earlier today."""

from __future__ import annotations

from include.risk.checks.base import RunTally, ok, veto
from include.risk.limits import RiskLimits
from include.risk.models import CheckResult, OrderProposal, RiskContext


class MaxOrdersPerRun:
    name = "max_orders_per_run"

    def check(self, order: OrderProposal, ctx: RiskContext, limits: RiskLimits, run: RunTally) -> CheckResult:
        if run.approved_orders >= limits.max_orders_per_run:
            return veto(self.name, f"{run.approved_orders} orders already approved this run "
                        f"(max_orders_per_run {limits.max_orders_per_run})")
        return ok(self.name, f"order {run.approved_orders + 1} of at most {limits.max_orders_per_run} this run")


class MaxOrdersPerDay:
    name = "max_orders_per_day"

    def check(self, order: OrderProposal, ctx: RiskContext, limits: RiskLimits, run: RunTally) -> CheckResult:
        total = ctx.orders_today + run.approved_orders
        if total >= limits.max_orders_per_day:
            return veto(self.name, f"{ctx.orders_today} orders placed today + {run.approved_orders} approved this "
                        f"run = {total} (max_orders_per_day {limits.max_orders_per_day})")
        return ok(self.name, f"order {total + 1} of at most {limits.max_orders_per_day} today")
