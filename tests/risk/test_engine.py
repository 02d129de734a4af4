"""``assess`` end to end: hand-computed orders, every veto recorded, run-level limits, live opt-in, JSON report."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from include.risk import LiveTradingNotAllowed, RiskLimits, assess
from tests.risk.support import context_kwargs, signal

LIMITS = RiskLimits()


def decide(signals, limits=LIMITS, **ctx):
    return assess(signals, limits=limits, **context_kwargs(**ctx))


def test_approved_buy_is_sized_from_dollars():
    (d,) = decide([signal(confidence=0.8)]).decisions
    assert (d.status, d.approved, d.side, d.quantity, d.limit_price, d.last_price, d.notional) == (
        "approved", True, "BUY", 9, 250.5, 250.0, 2254.5)  # floor(2500 / 250.50) = 9
    assert d.vetoes == () and len(d.checks) == 13 and all(c.approved for c in d.checks)


def test_hold_is_not_an_order():
    (d,) = decide([signal(action="HOLD", confidence=0.0)]).decisions
    assert (d.status, d.approved, d.side, d.quantity, d.checks) == ("hold", False, None, 0, ())


def test_every_veto_is_recorded_and_nothing_is_ordered():
    report = decide([signal(confidence=0.5)], mode="paper", account_id="U999", trading_state="HALTED",
                    market_open=False, verdicts={"TSLA": ("fail", ["negative close"])})
    (d,) = report.decisions
    assert (d.status, d.quantity, d.notional) == ("vetoed", 0, 0.0)
    assert [v.check for v in d.vetoes] == ["trading_state", "paper_account", "market_open", "data_quality",
                                           "min_confidence"]
    assert "data quality fail: negative close" in [v.reason for v in d.vetoes]


def test_failing_quality_verdict_blocks_only_that_symbol():
    report = decide([signal("TSLA"), signal("NVDA", price=120.0)],
                    verdicts={"TSLA": ("fail", ["duplicate dates"]), "NVDA": ("pass", [])})
    by = {d.symbol: d for d in report.decisions}
    assert by["TSLA"].status == "vetoed" and by["TSLA"].quantity == 0
    assert by["TSLA"].vetoes[0].reason == "data quality fail: duplicate dates"
    assert by["NVDA"].approved and by["NVDA"].quantity == 20  # limit 120.24; floor(2500 / 120.24) = 20


def test_orders_per_run_go_to_exits_first_then_the_most_confident():
    limits = RiskLimits(max_orders_per_run=2)
    signals = [signal("TSLA", confidence=0.75), signal("NVDA", confidence=0.9, price=120.0),
               signal("AAPL", "SELL", confidence=0.71, price=200.0)]
    report = decide(signals, limits, positions={"AAPL": {"qty": 5, "avg_cost": 150.0}})
    assert [(d.symbol, d.status) for d in report.decisions] == [("AAPL", "approved"), ("NVDA", "approved"),
                                                                ("TSLA", "vetoed")]
    aapl = report.decisions[0]
    assert (aapl.side, aapl.quantity, aapl.limit_price, aapl.reduces_position) == ("SELL", 5, 199.6, True)
    (veto,) = report.decisions[2].vetoes
    assert veto.check == "max_orders_per_run" and veto.reason.startswith("2 orders already approved this run")


def test_orders_per_day_counts_orders_already_placed():
    report = decide([signal("TSLA"), signal("NVDA", price=120.0)], RiskLimits(max_orders_per_day=3), orders_today=2)
    assert [d.status for d in report.decisions] == ["approved", "vetoed"]
    assert report.decisions[1].vetoes[0].reason == ("2 orders placed today + 1 approved this run = 3 "
                                                    "(max_orders_per_day 3)")


def test_gross_exposure_is_shared_across_the_run():
    # Room 3000 under a $3,000 leverage cap (NLV 3000, 1.0x): TSLA takes 9 x 250.50 = 2254.50, leaving 745.50.
    report = decide([signal("TSLA", confidence=0.9), signal("NVDA", confidence=0.8, price=120.0)],
                    net_liquidation=3_000.0)
    tsla, nvda = report.decisions
    assert (tsla.quantity, tsla.notional) == (9, 2254.5)
    assert (nvda.quantity, nvda.notional) == (6, 721.44)  # floor(745.50 / 120.24) = 6
    assert "gross exposure room" in nvda.sizing


def test_reducing_state_allows_only_exits():
    report = decide([signal("TSLA", "BUY"), signal("NVDA", "SELL", price=120.0)], trading_state="REDUCING",
                    positions={"NVDA": (3, 100.0)})
    assert [(d.symbol, d.status) for d in report.decisions] == [("NVDA", "approved"), ("TSLA", "vetoed")]


def test_paper_mode_needs_a_paper_account():
    report = decide([signal("TSLA"), signal("NVDA", price=120.0)], account_id="U7654321")
    assert all(d.status == "vetoed" and d.vetoes[0].check == "paper_account" for d in report.decisions)


def test_live_needs_the_environment_opt_in():
    with pytest.raises(LiveTradingNotAllowed, match="ALLOW_LIVE_TRADING=yes"):
        decide([signal()], mode="live", account_id="U1", environ={})
    with pytest.raises(LiveTradingNotAllowed):
        decide([signal()], mode="live", account_id="U1", environ={"ALLOW_LIVE_TRADING": "true"})
    report = decide([signal()], mode="live", account_id="U1", environ={"ALLOW_LIVE_TRADING": "yes"})
    assert report.decisions[0].approved


def test_unknown_mode_and_state_are_errors():
    with pytest.raises(ValueError, match="unknown mode 'sim'"):
        decide([signal()], mode="sim")
    with pytest.raises(ValueError):
        decide([signal()], trading_state="PAUSED")


def test_market_hours_from_the_calendar():
    monday_open = datetime(2025, 1, 6, 15, 0, tzinfo=UTC)  # 10:00 New York
    saturday = datetime(2025, 1, 4, 15, 0, tzinfo=UTC)
    assert decide([signal()], market_open=None, now=monday_open).decisions[0].approved
    (d,) = decide([signal()], market_open=None, now=saturday).decisions
    assert d.vetoes[0].reason == "market closed (calendar XNYS at 2025-01-04T15:00:00+00:00)"


def test_gross_value_from_positions_when_not_given():
    report = decide([signal()], gross_position_value=None, net_liquidation=None,
                    positions={"NVDA": (100, 90.0), "MSFT": (10, 400.0)})  # 100 x 120 last + 10 x 400 avg cost
    assert report.context["gross_position_value"] == 16_000.0
    assert report.context["gross_position_value_source"] == "positions x last prices"


def test_signal_dicts_and_a_json_report():
    report = decide([signal().to_dict(), signal("NVDA", action="HOLD", confidence=0.0).to_dict(),
                     signal("AAPL", confidence=0.5, price=200.0).to_dict()])
    data = json.loads(json.dumps(report.to_dict()))
    assert data["summary"] == {"signals": 3, "approved": 1, "vetoed": 1, "hold": 1, "approved_notional": 2254.5,
                               "vetoes_by_check": {"min_confidence": 1}}
    assert data["limits"]["min_confidence"] == 0.7 and data["context"]["trading_state"] == "ACTIVE"
    assert data["context"]["checks"][0] == "trading_state"
    assert {d["symbol"]: d["status"] for d in data["decisions"]} == {"TSLA": "approved", "NVDA": "hold",
                                                                     "AAPL": "vetoed"}
    assert [d.symbol for d in report.approved] == ["TSLA"]
