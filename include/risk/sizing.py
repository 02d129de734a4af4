"""Turn a BUY/SELL signal into an order proposal: limit price inside the collar, whole shares from dollars."""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from include.risk.limits import RiskLimits
from include.risk.models import OrderProposal, RiskContext, Side
from include.strategies.base import Signal


def tick_size(price: float) -> Decimal:
    # US equities: $0.01 at or above $1, $0.0001 below (Reg NMS sub-penny rule).
    return Decimal("0.01") if price >= 1 else Decimal("0.0001")


def limit_price(last: float, side: Side, offset_pct: float) -> float:
    """A marketable limit ``offset_pct`` through the last price, rounded *towards* the last price to a valid
    tick so it never ends up outside the collar."""
    raw = Decimal(str(last)) * (Decimal(1) + Decimal(str(offset_pct)) * (1 if side == "BUY" else -1))
    tick = tick_size(last)
    rounding = ROUND_FLOOR if side == "BUY" else ROUND_CEILING
    return float((raw / tick).to_integral_value(rounding=rounding) * tick)


def gross_cap(ctx: RiskContext, limits: RiskLimits) -> tuple[float, str]:
    """The gross-exposure ceiling in $, and what set it."""
    if ctx.net_liquidation is not None and ctx.net_liquidation > 0:
        by_leverage = limits.max_gross_leverage * ctx.net_liquidation
        if by_leverage < limits.max_gross_exposure:
            return by_leverage, (f"max_gross_leverage {limits.max_gross_leverage:g} x net liquidation "
                                 f"${ctx.net_liquidation:,.2f}")
    return limits.max_gross_exposure, "max_gross_exposure"


def propose(signal: Signal, ctx: RiskContext, limits: RiskLimits, *, run_added_gross: float,
            run_added_position: float) -> OrderProposal:
    """Size the order. ``run_added_*`` are the $ already approved earlier in this run (gross, and this symbol)."""
    side: Side = "BUY" if signal.action == "BUY" else "SELL"
    symbol = signal.symbol
    last = ctx.last_prices.get(symbol)
    # Working orders count: a BUY adds to the position plus working BUYs, a SELL takes from the position net of
    # working SELLs (the broker's live orders and intents not yet there).
    qty_held = ctx.sellable_qty(symbol) if side == "SELL" else ctx.exposure_qty(symbol)
    held_notional = abs(qty_held) * last if last else 0.0
    base = {"symbol": symbol, "side": side, "confidence": signal.confidence, "signal_price": signal.price_reference,
            "last_price": last, "position_qty": qty_held, "position_notional": round(held_notional, 2)}
    reduces = side == "SELL" and qty_held > 0
    if not last or last <= 0:
        return OrderProposal(**base, limit_price=None, quantity=0, notional=0.0, reduces_position=reduces,
                             sizing=f"no last price for {symbol}: cannot size")
    price = limit_price(last, side, limits.limit_offset_pct)
    if side == "SELL":
        cap_qty = math.floor(limits.max_order_notional / price)
        qty = min(math.floor(qty_held), cap_qty) if qty_held > 0 else 0
        why = (f"sell the long position ({qty_held:g} sh), at most floor(max_order_notional "
               f"${limits.max_order_notional:,.2f} / ${price:,.2f}) = {cap_qty} sh") if qty_held > 0 else \
              "no long position to sell"
        return OrderProposal(**base, limit_price=price, quantity=qty, notional=round(qty * price, 2),
                             reduces_position=reduces, sizing=why)
    # BUY: the tightest of the dollar caps, then whole shares at the limit price (floor, never round up).
    cap, _ = gross_cap(ctx, limits)
    caps = {
        "max_order_notional": limits.max_order_notional,
        "max_position_notional room": limits.max_position_notional - held_notional - run_added_position,
        "gross exposure room": cap - ctx.gross_position_value - run_added_gross,
    }
    bound = min(caps, key=lambda k: caps[k])
    budget = max(0.0, caps[bound])
    qty = math.floor(budget / price)
    why = f"budget ${budget:,.2f} ({bound}); floor(${budget:,.2f} / ${price:,.2f}) = {qty} sh"
    return OrderProposal(**base, limit_price=price, quantity=qty, notional=round(qty * price, 2),
                         reduces_position=False, sizing=why)
