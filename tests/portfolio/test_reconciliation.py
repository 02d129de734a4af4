"""Reconciliation against the simulator and the real ledger: clean books keep trading ACTIVE; a position or an
open order placed outside the system halts trading with the reason, alerts once (webhook + ops.alerts) and is
recorded in trading.reconciliations; an accepted baseline explains pre-existing holdings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from include.execution.models import IntentRecord
from include.portfolio.mismatches import BrokerOrder, BrokerTrade, find_mismatches
from include.portfolio.reconciliation import accept_baseline, run_reconciliation
from include.risk.state_store import read_state, state_history
from tests.execution.support import admin, rows


@pytest.fixture
def reconcile(clean_db, snapshot, monkeypatch):
    monkeypatch.setenv("MARKET_DB_URL", clean_db)  # send_alert records into ops.alerts

    def _run(run_key: str) -> dict:
        snapshot(run_key)
        return run_reconciliation(clean_db, run_key, changed_by="test", dag_id="ibkr_portfolio_monitor",
                                  run_id=run_key.split("/")[-1])

    return _run


def test_clean_books_keep_trading_active(clean_db, sim, paper_fills, reconcile, webhook):
    paper_fills("r1", [("AAPL", "BUY", 10), ("MSFT", "BUY", 4)])
    paper_fills("r2", [("AAPL", "SELL", 10), ("NVDA", "BUY", 2, 1.0)])  # AAPL flat; NVDA LMT working
    result = reconcile("dag/run-1")
    assert (result["status"], result["mismatch_count"], result["halted"]) == ("clean", 0, False)
    assert read_state(clean_db).state == "ACTIVE" and webhook == []
    assert rows(clean_db, "SELECT status, mismatch_count, state_after FROM trading.reconciliations") == [
        ("clean", 0, "ACTIVE")]


def test_unknown_position_halts_with_reason_and_alerts_once(clean_db, sim, paper_fills, reconcile, webhook):
    paper_fills("r1", [("AAPL", "BUY", 10)])
    admin(sim, "/positions", {"symbol": "TSLA", "qty": 7, "avg_cost": 200})
    result = reconcile("dag/run-1")
    assert result["status"] == "mismatch" and result["halted"] and result["state_after"] == "HALTED"
    (m,) = result["mismatches"]
    assert (m["kind"], m["symbol"], m["data"]["broker_quantity"], m["data"]["expected_quantity"]) == (
        "unknown_position", "TSLA", 7.0, 0.0)
    state = read_state(clean_db)
    assert state.state == "HALTED" and "unknown_position" in state.reason and "TSLA: broker holds 7" in state.reason
    assert state.changed_by == "test"
    (hook,) = webhook
    assert hook["event"] == "reconciliation_mismatch" and "TSLA" in hook["summary"]
    assert rows(clean_db, "SELECT event, severity, dag_id FROM ops.alerts") == [
        ("reconciliation_mismatch", "critical", "ibkr_portfolio_monitor")]
    ((kinds, halted),) = rows(clean_db, "SELECT jsonb_path_query_array(mismatches, '$[*].kind'), halted"
                                        " FROM trading.reconciliations")
    assert (kinds, halted) == (["unknown_position"], True)

    again = reconcile("dag/run-2")  # still there ten minutes later: recorded, no second alert or state change
    assert again["mismatch_count"] == 1 and not again["halted"] and again["state_before"] == "HALTED"
    assert len(webhook) == 1 and len([h for h in state_history(clean_db) if h.state == "HALTED"]) == 1


def test_orphan_open_order_halts(clean_db, sim, paper_fills, reconcile, webhook):
    paper_fills("r1", [("AAPL", "BUY", 3)])
    admin(sim, "/orders", {"symbol": "MSFT", "side": "BUY", "orderType": "LMT", "price": 1.0, "quantity": 5,
                           "tif": "GTC", "cOID": "placed-in-tws"})
    result = reconcile("dag/run-1")
    (m,) = result["mismatches"]
    assert (m["kind"], m["symbol"], m["data"]["coid"]) == ("orphan_open_order", "MSFT", "placed-in-tws")
    assert read_state(clean_db).state == "HALTED" and "open order" in read_state(clean_db).reason
    assert [h["event"] for h in webhook] == ["reconciliation_mismatch"]


def test_accepted_baseline_explains_preexisting_holdings(clean_db, sim, paper_fills, snapshot, reconcile):
    admin(sim, "/positions", {"symbol": "TSLA", "qty": 7, "avg_cost": 200})
    paper_fills("r1", [("TSLA", "BUY", 3)])
    snapshot("dag/setup")
    assert accept_baseline(clean_db, "dag/setup", "held before the system traded", "test") == {"TSLA": 7.0}
    assert reconcile("dag/run-1")["status"] == "clean"
    assert read_state(clean_db).state == "ACTIVE"


# --- the rules on hand-made inputs ----------------------------------------------------------------------------
NOW = datetime(2025, 3, 3, 16, tzinfo=UTC)


def _intent(coid: str, symbol: str, side: str, qty: float, filled: float, status: str,
            age: timedelta = timedelta(hours=1)) -> IntentRecord:
    return IntentRecord(
        intent_id=coid, dag_id="d", run_id="r", try_number=1, strategy_id="1", symbol=symbol, conid=1, side=side,
        quantity=qty, order_type="MKT", tif="DAY", limit_price=None, ref_price=100.0, mode="paper",
        account_id="DU1", status=status, broker_order_id="1", broker_status=None, coid=coid, filled_quantity=filled,
        avg_fill_price=100.0 if filled else None, last_error=None, mlflow_run_id=None, signal=None,
        risk_decision=None, dq_verdict=None, created_at=NOW - age, updated_at=NOW - age, session_date=None,
            position_before=None, target_position=None,
    )  # fmt: skip


def _find(**kw):
    base = {"positions": {}, "orders": [], "trades": [], "intents": [], "baseline": {}, "snapshot_at": NOW}
    return find_mismatches(**{**base, **kw})


def test_missing_fills_both_ways():
    filled = _intent("oiA", "AAPL", "BUY", 5, 5, "filled")
    unseen = BrokerTrade("x1", "oiB", "AAPL", "BUY", 2, 100.0)
    found = _find(positions={"AAPL": 7}, intents=[filled, _intent("oiB", "AAPL", "BUY", 2, 0, "failed")],
                  trades=[unseen])
    kinds = sorted((m.kind, m.key) for m in found.mismatches)
    # ledger says oiA filled 5 but the broker has no execution; oiB executed 2 but the ledger shows it failed
    assert kinds == [("missing_fill", "intent:oiB"), ("missing_fill", "ledger:oiA"), ("unknown_position", "AAPL")]
    outside = _find(positions={"MSFT": 1}, trades=[BrokerTrade("x9", None, "MSFT", "SELL", 1, 50.0)])
    assert {m.kind for m in outside.mismatches} == {"missing_fill", "unknown_position"}


def test_timing_races_are_deferred_not_halted():
    # a working order of the ledger may have filled between the executions read and the positions read
    working = _intent("oiW", "NVDA", "BUY", 10, 0, "acknowledged")
    found = _find(positions={"NVDA": 4}, intents=[working])
    assert found.status == "clean" and found.deferred[0]["kind"] == "unknown_position"
    assert _find(positions={"NVDA": 11}, intents=[working]).status == "mismatch"  # beyond what it can fill
    # an intent submitted seconds ago whose execution is already listed: the next run decides
    fresh = _intent("oiF", "NVDA", "BUY", 3, 0, "submitted", age=timedelta(seconds=5))
    found = _find(positions={"NVDA": 3}, intents=[fresh], trades=[BrokerTrade("x2", "oiF", "NVDA", "BUY", 3, 9.0)])
    assert found.status == "clean" and {d["kind"] for d in found.deferred} == {"unknown_position", "missing_fill"}
    # open order of a terminal intent is an orphan; of a working one it is fine
    cancelled = _intent("oiC", "AAPL", "SELL", 1, 0, "cancelled")
    order = BrokerOrder(7, "oiC", "AAPL", "SELL", "Submitted", 1, 0)
    assert [m.kind for m in _find(orders=[order], intents=[cancelled]).mismatches] == ["orphan_open_order"]
    assert _find(orders=[BrokerOrder(8, "oiW", "NVDA", "BUY", "Submitted", 10, 0)], intents=[working]).status == "clean"
    assert _find(orders=[BrokerOrder(9, None, "AAPL", "BUY", "Filled", 1, 1)]).status == "clean"  # done, not open
