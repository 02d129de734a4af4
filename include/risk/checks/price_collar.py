"""Price collar: the signal's price and the limit price must both be within ``price_collar_pct`` of the last
price (a stale signal after a gap, or a fat-fingered limit, is vetoed)."""

from __future__ import annotations

from include.risk.checks.base import RunTally, ok, veto
from include.risk.limits import RiskLimits
from include.risk.models import CheckResult, OrderProposal, RiskContext


class PriceCollar:
    name = "price_collar"

    def check(self, order: OrderProposal, ctx: RiskContext, limits: RiskLimits, run: RunTally) -> CheckResult:
        last, collar = order.last_price, limits.price_collar_pct
        if not last or last <= 0:
            note = ctx.price_notes.get(order.symbol)
            return veto(self.name, f"no usable last price for {order.symbol}" + (f": {note}" if note else ""))
        if order.signal_price is None:
            return veto(self.name, "the signal carries no reference price")
        moved = abs(order.signal_price - last) / last
        if moved > collar:
            return veto(self.name, f"price moved {moved:.2%} since the signal (${order.signal_price:,.2f} -> "
                        f"last ${last:,.2f}) > collar {collar:.2%}")
        if order.limit_price is None or abs(order.limit_price - last) / last > collar:
            return veto(self.name, f"limit {order.limit_price} outside the {collar:.2%} collar around ${last:,.2f}")
        return ok(self.name, f"limit ${order.limit_price:,.2f} and signal price within {collar:.2%} of last "
                  f"${last:,.2f} (signal moved {moved:.2%})")
