"""Limit prices on valid ticks inside the collar, and whole-share quantities from dollar caps (hand-computed)."""

from __future__ import annotations

import pytest

from include.risk.limits import RiskLimits
from include.risk.sizing import gross_cap, limit_price, propose
from tests.risk.support import context, signal

LIMITS = RiskLimits()  # order $2,500, position $10,000, gross $50,000 / 1.0x NLV, offset 0.2 %, collar 2 %


@pytest.mark.parametrize(
    ("last", "side", "expected"),
    [
        (250.0, "BUY", 250.5),  # 250 * 1.002 = 250.5 exactly
        (251.2, "BUY", 251.7),  # 251.7024 floored to the cent (towards last)
        (251.2, "SELL", 250.70),  # 250.6976 ceiled to the cent (towards last)
        (0.5123, "BUY", 0.5133),  # sub-dollar tick 0.0001: 0.51332... floored
        (0.5123, "SELL", 0.5113),  # 0.51127... ceiled
    ],
)
def test_limit_price(last, side, expected):
    assert limit_price(last, side, 0.002) == pytest.approx(expected, abs=1e-9)


def test_buy_bound_by_order_notional():
    order = propose(signal(), context(), LIMITS, run_added_gross=0, run_added_position=0)
    # limit 250.50; floor(2500 / 250.5) = floor(9.98) = 9 sh; 9 x 250.5 = 2254.50
    assert (order.side, order.limit_price, order.quantity, order.notional) == ("BUY", 250.5, 9, 2254.5)
    assert order.sizing == "budget $2,500.00 (max_order_notional); floor($2,500.00 / $250.50) = 9 sh"


def test_buy_bound_by_position_room():
    ctx = context(positions={"TSLA": {"qty": 36, "avg_cost": 200}})  # 36 x 250 = 9000 held; room 1000
    order = propose(signal(), ctx, LIMITS, run_added_gross=0, run_added_position=0)
    assert (order.quantity, order.notional, order.position_notional) == (3, 751.5, 9000.0)  # floor(1000/250.5)
    assert "max_position_notional room" in order.sizing


def test_buy_bound_by_gross_room_and_leverage():
    ctx = context(net_liquidation=20_000.0, gross_position_value=19_000.0)  # 1.0x NLV cap: room 1000
    assert gross_cap(ctx, LIMITS) == (20_000.0, "max_gross_leverage 1 x net liquidation $20,000.00")
    order = propose(signal(), ctx, LIMITS, run_added_gross=500.0, run_added_position=0)  # room 500
    assert (order.quantity, order.notional) == (1, 250.5)
    assert "gross exposure room" in order.sizing


def test_zero_shares_when_the_budget_is_below_one_share():
    order = propose(signal(price=3000.0), context(last_prices={"TSLA": 3000.0}), LIMITS,
                    run_added_gross=0, run_added_position=0)
    assert order.quantity == 0 and order.notional == 0.0
    assert order.sizing == "budget $2,500.00 (max_order_notional); floor($2,500.00 / $3,006.00) = 0 sh"


def test_sell_closes_the_long_position_capped_by_order_notional():
    small = propose(signal(action="SELL"), context(positions={"TSLA": (4, 200.0)}), LIMITS, run_added_gross=0,
                    run_added_position=0)
    assert (small.limit_price, small.quantity, small.reduces_position) == (249.5, 4, True)
    big = propose(signal(action="SELL"), context(positions={"TSLA": (100, 200.0)}), LIMITS, run_added_gross=0,
                  run_added_position=0)
    assert big.quantity == 10  # floor(2500 / 249.5) = 10, not the 100 held
    none = propose(signal(action="SELL"), context(), LIMITS, run_added_gross=0, run_added_position=0)
    assert (none.quantity, none.reduces_position, none.sizing) == (0, False, "no long position to sell")


def test_no_last_price():
    order = propose(signal(symbol="MSFT"), context(), LIMITS, run_added_gross=0, run_added_position=0)
    assert (order.quantity, order.limit_price) == (0, None)
    assert order.sizing == "no last price for MSFT: cannot size"


def test_working_buys_count_against_the_position_room():
    # 24 sh held (6000) + 12 sh in a working BUY (3000): room 1000 -> floor(1000 / 250.5) = 3 sh, not 9
    ctx = context(positions={"TSLA": (24, 200.0)}, working={"TSLA": {"buy": 12, "sell": 0}})
    order = propose(signal(), ctx, LIMITS, run_added_gross=0, run_added_position=0)
    assert (order.quantity, order.position_qty) == (3, 36)


def test_a_second_sell_cannot_open_a_short():
    held = {"TSLA": (8, 200.0)}
    first = propose(signal(action="SELL"), context(positions=held), LIMITS, run_added_gross=0, run_added_position=0)
    assert first.quantity == 8
    # The first SELL is working at the broker (or recorded, not yet there): nothing is left to sell.
    again = propose(signal(action="SELL"), context(positions=held, working={"TSLA": {"buy": 0, "sell": 8}}), LIMITS,
                    run_added_gross=0, run_added_position=0)
    assert (again.quantity, again.reduces_position, again.sizing) == (0, False, "no long position to sell")
    part = propose(signal(action="SELL"), context(positions=held, working={"TSLA": {"buy": 0, "sell": 5}}), LIMITS,
                   run_added_gross=0, run_added_position=0)
    assert part.quantity == 3
