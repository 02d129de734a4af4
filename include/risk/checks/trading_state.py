"""Kill switch: ACTIVE allows everything, REDUCING only orders that reduce a position, HALTED nothing."""

from __future__ import annotations

from include.risk.checks.base import RunTally, ok, veto
from include.risk.limits import RiskLimits
from include.risk.models import CheckResult, OrderProposal, RiskContext, TradingState


class TradingStateGate:
    name = "trading_state"

    def check(self, order: OrderProposal, ctx: RiskContext, limits: RiskLimits, run: RunTally) -> CheckResult:
        state = ctx.trading_state
        if state is TradingState.HALTED:
            return veto(self.name, "trading state HALTED: no orders")
        if state is TradingState.REDUCING and not order.reduces_position:
            return veto(self.name, f"trading state REDUCING: only position-reducing orders; {order.side} "
                        f"{order.symbol} does not reduce a position (held {order.position_qty:g})")
        return ok(self.name, f"trading state {state.value}")
