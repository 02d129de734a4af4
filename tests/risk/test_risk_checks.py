"""Each check on its own: one approve and one veto case (at least), with the reason it gives."""

from __future__ import annotations

import pytest

from include.risk import checks as C
from include.risk.checks import RunTally
from include.risk.limits import RiskLimits
from include.risk.sizing import propose
from tests.risk.support import context, signal

LIMITS = RiskLimits()


def run_check(check, sig=None, run=None, limits=LIMITS, **ctx):
    ctx_ = context(**ctx)
    run = run or RunTally()
    order = propose(sig or signal(), ctx_, limits, run_added_gross=run.added_gross,
                    run_added_position=run.added_position.get((sig or signal()).symbol, 0.0))
    return check.check(order, ctx_, limits, run)


@pytest.mark.parametrize(("confidence", "approved"), [(0.7, True), (0.95, True), (0.6999, False), (0.0, False)])
def test_min_confidence(confidence, approved):
    result = run_check(C.MinConfidence(), signal(confidence=confidence))
    assert result.approved is approved
    if not approved:
        assert result.reason == f"confidence {confidence:.4f} < min_confidence 0.7"


@pytest.mark.parametrize(
    ("state", "action", "held", "approved", "reason"),
    [
        ("ACTIVE", "BUY", 0, True, "trading state ACTIVE"),
        ("REDUCING", "SELL", 5, True, "trading state REDUCING"),
        ("REDUCING", "BUY", 5, False, "only position-reducing orders; BUY TSLA does not reduce"),
        ("REDUCING", "SELL", 0, False, "only position-reducing orders; SELL TSLA"),
        ("HALTED", "SELL", 5, False, "trading state HALTED: no orders"),
        ("HALTED", "BUY", 0, False, "trading state HALTED: no orders"),
    ],
)
def test_trading_state(state, action, held, approved, reason):
    result = run_check(C.TradingStateGate(), signal(action=action), trading_state=state,
                       positions={"TSLA": (held, 200.0)} if held else {})
    assert result.approved is approved and reason in result.reason


@pytest.mark.parametrize(
    ("mode", "account", "approved"),
    [("paper", "DU1234567", True), ("paper", "U1234567", False), ("paper", None, False), ("paper", "du1", False),
     ("dry_run", "U1234567", True), ("live", "U1234567", True)],
)
def test_paper_account(mode, account, approved):
    assert run_check(C.PaperAccountOnly(), mode=mode, account_id=account).approved is approved


def test_market_open():
    assert run_check(C.MarketOpen(), market_open=True).approved
    closed = run_check(C.MarketOpen(), market_open=False)
    assert not closed.approved and closed.reason == "market closed (input)"


@pytest.mark.parametrize(
    ("verdict", "action", "held", "approved", "reason"),
    [
        (("pass", []), "BUY", 0, True, "data quality pass"),
        (("warn", ["stale snapshot"]), "BUY", 0, False, "data quality warn: stale snapshot; only exits"),
        (("warn", ["stale snapshot"]), "SELL", 5, True, "exit allowed"),
        (("warn", []), "SELL", 0, False, "only exits that reduce a long position"),
        (("fail", ["close <= 0", "gap"]), "SELL", 5, False, "data quality fail: close <= 0; gap"),
        ({"verdict": "FAIL", "reasons": "nulls"}, "BUY", 0, False, "data quality fail: nulls"),
        (None, "BUY", 0, False, "no data-quality verdict for TSLA"),
    ],
)
def test_data_quality(verdict, action, held, approved, reason):
    verdicts = {"TSLA": verdict} if verdict is not None else {}
    result = run_check(C.DataQualityGate(), signal(action=action), verdicts=verdicts,
                       positions={"TSLA": (held, 200.0)} if held else {})
    assert result.approved is approved and reason in result.reason


def test_quality_verdict_objects_are_accepted():
    class Verdict:  # include.quality's type: attributes, not a tuple
        verdict, reasons = "warn", ["late bar"]

    result = run_check(C.DataQualityGate(), verdicts={"TSLA": Verdict()})
    assert not result.approved and "warn: late bar" in result.reason


def test_long_only():
    assert run_check(C.LongOnly(), signal(action="SELL"), positions={"TSLA": (3, 1.0)}).approved
    result = run_check(C.LongOnly(), signal(action="SELL"))
    assert not result.approved and "would open a short" in result.reason


def test_whole_shares():
    assert run_check(C.WholeShares()).reason.startswith("9 sh: budget $2,500.00")
    zero = run_check(C.WholeShares(), signal(price=3000.0), last_prices={"TSLA": 3000.0})
    assert not zero.approved and zero.reason.startswith("zero shares: budget $2,500.00")


@pytest.mark.parametrize(
    ("signal_price", "last", "approved", "reason"),
    [
        (250.0, 250.0, True, "within 2.00% of last $250.00"),
        (250.0, 254.9, True, "signal moved 1.92%"),
        (250.0, 256.0, False, "price moved 2.34% since the signal ($250.00 -> last $256.00) > collar 2.00%"),
        (None, 250.0, False, "the signal carries no reference price"),
    ],
)
def test_price_collar(signal_price, last, approved, reason):
    result = run_check(C.PriceCollar(), signal(price=signal_price), last_prices={"TSLA": last})
    assert result.approved is approved and reason in result.reason


def test_price_collar_vetoes_a_limit_outside_it():
    wide = RiskLimits(price_collar_pct=0.05, limit_offset_pct=0.05)
    narrow = RiskLimits(price_collar_pct=0.01, limit_offset_pct=0.01)
    assert run_check(C.PriceCollar(), limits=wide).approved
    ctx = context()
    order = propose(signal(), ctx, wide, run_added_gross=0, run_added_position=0)  # limit 262.50 (5 %)
    result = C.PriceCollar().check(order, ctx, narrow, RunTally())  # ... checked against a 1 % collar
    assert not result.approved and "limit 262.5 outside the 1.00% collar" in result.reason


def test_no_last_price_is_vetoed_by_the_collar():
    result = run_check(C.PriceCollar(), signal(symbol="MSFT"))
    assert not result.approved and result.reason == "no usable last price for MSFT"


def test_max_order_notional():
    assert run_check(C.MaxOrderNotional()).approved
    ctx = context()
    order = propose(signal(), ctx, RiskLimits(max_order_notional=5000), run_added_gross=0, run_added_position=0)
    result = C.MaxOrderNotional().check(order, ctx, LIMITS, RunTally())  # a 19-share order vs the $2,500 cap
    assert not result.approved and result.reason == "order $4,759.50 > max_order_notional $2,500.00"


def test_max_position_notional_counts_this_runs_buys():
    run = RunTally(added_position={"TSLA": 9_000.0})
    ctx = context()
    order = propose(signal(), ctx, RiskLimits(), run_added_gross=0, run_added_position=0)  # 9 sh, $2,254.50
    result = C.MaxPositionNotional().check(order, ctx, LIMITS, run)
    assert not result.approved and result.reason.startswith("position would be $11,254.50 > max_position_notional")
    assert run_check(C.MaxPositionNotional(), signal(action="SELL"), positions={"TSLA": (100, 1.0)}).approved


def test_max_gross_exposure():
    ctx = context(gross_position_value=49_000.0)
    order = propose(signal(), ctx, RiskLimits(max_gross_exposure=60_000), run_added_gross=0, run_added_position=0)
    result = C.MaxGrossExposure().check(order, ctx, LIMITS, RunTally())
    assert not result.approved
    assert result.reason == "gross exposure would be $51,254.50 > $50,000.00 (max_gross_exposure)"


def test_order_counts():
    assert run_check(C.MaxOrdersPerRun(), run=RunTally(approved_orders=4)).approved
    per_run = run_check(C.MaxOrdersPerRun(), run=RunTally(approved_orders=5))
    assert not per_run.approved and "(max_orders_per_run 5)" in per_run.reason
    assert run_check(C.MaxOrdersPerDay(), orders_today=19).approved
    per_day = run_check(C.MaxOrdersPerDay(), orders_today=18, run=RunTally(approved_orders=2))
    assert not per_day.approved
    assert per_day.reason == "18 orders placed today + 2 approved this run = 20 (max_orders_per_day 20)"
