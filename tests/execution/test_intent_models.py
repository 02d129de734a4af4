"""Intent ids, order-plan validation, the live-trading gate and import hygiene (no database, no gateway)."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date

import pytest

from include.execution import OrderPlan, RunContext, check_live_allowed, make_intent_id
from include.settings import LiveTradingNotAllowed
from tests.conftest import REPO


def test_intent_id_is_one_decision_per_strategy_symbol_session_and_mode():
    base = (1, "TSLA", date(2026, 1, 5), "paper")
    first = make_intent_id(*base)
    assert first == make_intent_id(*base)
    assert first == make_intent_id("1", " tsla ", "2026-01-05", "paper")  # normalised symbol/strategy/session
    assert re.fullmatch(r"oi[0-9a-f]{20}", first)  # 22 plain ASCII characters: safe as a cOID
    variants = {make_intent_id(*base[:i], v, *base[i + 1:])
                for i, v in enumerate((2, "NVDA", date(2026, 1, 6), "dry_run"))}
    assert first not in variants and len(variants) == 4
    # Neither the DAG, the run nor the side is part of it: any run of the strategy that session re-finds it.
    buy = OrderPlan(strategy_id=1, symbol="TSLA", side="BUY", quantity=1, ref_price=100.0, order_type="MKT",
                    session_date=date(2026, 1, 5))
    sell = OrderPlan(strategy_id=1, symbol="TSLA", side="SELL", quantity=1, ref_price=100.0, order_type="MKT",
                     session_date=date(2026, 1, 5))
    runs = [RunContext(dag_id=d, run_id=r, mode="paper") for d, r in (("ibkr_trading_strategy", "manual__1"),
                                                                      ("strategy_sma", "scheduled__2"))]
    assert {p.intent_id(r) for p in (buy, sell) for r in runs} == {first}
    with pytest.raises(ValueError, match="no session_date"):
        OrderPlan(strategy_id=1, symbol="TSLA", side="BUY", quantity=1, ref_price=1.0, order_type="MKT").intent_id(
            runs[0])


def test_plan_validation_names_the_order():
    with pytest.raises(ValueError, match="BUY 0 TSLA: quantity"):
        OrderPlan(strategy_id=1, symbol="tsla", side="BUY", quantity=0, ref_price=100.0, order_type="MKT")
    with pytest.raises(ValueError, match="LMT order needs a positive limit_price"):
        OrderPlan(strategy_id=1, symbol="TSLA", side="BUY", quantity=1, ref_price=100.0, order_type="LMT")
    with pytest.raises(ValueError, match="ref_price"):
        OrderPlan(strategy_id=1, symbol="TSLA", side="SELL", quantity=1, ref_price=float("nan"), order_type="MKT")
    ok = OrderPlan(strategy_id=1, symbol="tsla", side="BUY", quantity=1, ref_price=99.5, limit_price=100.0)
    assert ok.symbol == "TSLA" and ok.order_type == "LMT"
    with pytest.raises(ValueError, match="mode"):
        RunContext(dag_id="d", run_id="r", mode="yolo")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [None, "", "no", "true", "1", "YES please"])
def test_live_mode_needs_the_environment_opt_in(value):
    env = {} if value is None else {"ALLOW_LIVE_TRADING": value}
    with pytest.raises(LiveTradingNotAllowed, match="ALLOW_LIVE_TRADING"):
        check_live_allowed(RunContext(dag_id="d", run_id="r", mode="live"), env)
    check_live_allowed(RunContext(dag_id="d", run_id="r", mode="live"), {"ALLOW_LIVE_TRADING": " Yes "})
    check_live_allowed(RunContext(dag_id="d", run_id="r", mode="paper"), env)  # paper needs no opt-in


def test_execution_package_imports_no_airflow_and_nothing_heavy():
    code = ("import sys, include.execution, include.execution.refresh; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'airflow', 'pandas', 'mlflow', 'great_expectations', 'dbt', 'psycopg2', 'httpx'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_plan_from_an_approved_risk_decision_keeps_the_audit_trail():
    from include.risk.models import CheckResult, RiskDecision

    checks = (CheckResult(check="confidence", approved=True, reason="0.82 >= 0.7"),)
    decision = RiskDecision(symbol="TSLA", strategy_id=3, action="BUY", status="approved", approved=True, side="BUY",
                            quantity=4, limit_price=251.25, last_price=250.0, notional=1005.0, confidence=0.82,
                            position_before=10, checks=checks)
    got = OrderPlan.from_decision(decision, session_date=date(2026, 1, 5), signal={"action": "BUY",
                                  "confidence": 0.82}, dq={"verdict": "pass"})
    assert (got.strategy_id, got.symbol, got.side, got.quantity, got.order_type, got.limit_price, got.ref_price) \
        == (3, "TSLA", "BUY", 4, "LMT", 251.25, 250.0)
    assert got.risk["checks"][0]["reason"] == "0.82 >= 0.7" and got.dq == {"verdict": "pass"}
    assert (got.session_date, got.position_before, got.target_position) == (date(2026, 1, 5), 10, 14)
    vetoed = decision.model_copy(update={"approved": False, "status": "vetoed", "quantity": 0})
    with pytest.raises(ValueError, match="TSLA is not an approved order: 'vetoed'"):
        OrderPlan.from_decision(vetoed, session_date=date(2026, 1, 5))
