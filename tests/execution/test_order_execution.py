"""execute_intents / refresh_intents against the real simulator and PostgreSQL: dry_run touches no order
endpoint, paper submits once per intent and records broker ids, statuses and fills, re-runs never resubmit."""

from __future__ import annotations

import pytest

from include.execution import (
    ExecutionError,
    IntentConflictError,
    OrderExecutionError,
    execute_intents,
    load_events,
    load_intents,
    refresh_intents,
)
from include.execution.ledger import connect
from include.settings import LiveTradingNotAllowed
from tests.execution.conftest import make_client
from tests.execution.support import admin, book, order_endpoint_hits, order_posts, orders_by_coid, plan, rows, run_ctx


def _ledger(dsn: str, run_id: str):
    conn = connect(dsn)
    try:
        return load_intents(conn, run_id=run_id)
    finally:
        conn.close()


def _events(dsn: str, intent_id: str) -> list[dict]:
    conn = connect(dsn)
    try:
        return load_events(conn, intent_id)
    finally:
        conn.close()


def test_dry_run_records_simulated_intents_and_touches_no_order_endpoint(clean_db, sim, client):
    admin(sim, "/stats/reset")
    plans = [plan("TSLA", limit=251.5, order_type="LMT", ref_price=250.0), plan("NVDA", "SELL", ref_price=130.0)]
    report = execute_intents(plans, run_ctx("dry-1", mode="dry_run"), dsn=clean_db, broker=client)
    assert report.simulated == [p.intent_id(run_ctx("dry-1", mode="dry_run")) for p in plans]
    assert order_endpoint_hits(sim) == {} and stats_requests(sim) == 0  # not even a session check
    assert book(sim) == {"orders": [], "pending": []}
    got = {(i.symbol, i.status, i.ref_price, i.limit_price, i.mode, i.broker_order_id) for i in report.intents}
    assert got == {("TSLA", "simulated", 250.0, 251.5, "dry_run", None), ("NVDA", "simulated", 130.0, None,
                                                                          "dry_run", None)}
    # Traceable: run, try, MLflow run, signal, risk decision and data-quality verdict are on the row.
    (row,) = rows(clean_db, "SELECT dag_id, run_id, try_number, mlflow_run_id, signal->>'model',"
                            " risk_decision->>'approved', dq_verdict->>'verdict', coid = intent_id"
                            " FROM trading.order_intents WHERE symbol = 'TSLA'")
    assert row == ("ibkr_trading_strategy", "dry-1", 1, "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "sma_crossover",
                   "true", "pass", True)
    # No broker client at all is fine in dry_run, and a re-run changes nothing.
    again = execute_intents(plans, run_ctx("dry-1", mode="dry_run", try_number=2), dsn=clean_db)
    assert again.simulated == [] and len(again.skipped) == 2
    assert [e["status"] for e in _events(clean_db, report.intents[0].intent_id)] == ["pending", "simulated"]


def test_paper_submits_once_records_broker_ids_fills_and_the_question_chain(clean_db, sim, client):
    admin(sim, "/config", {"questions": ["o163", "o451"]})  # every order asks two questions in a chain
    plans = [plan("TSLA", qty=2), plan("NVDA", "BUY", qty=4), plan("AAPL", "BUY", qty=1, strategy_id=7)]
    run = run_ctx("paper-1")
    report = execute_intents(plans, run, dsn=clean_db, broker=client)
    assert len(report.submitted) == 3 and report.reconciled == [] and report.skipped == []
    placed = {o["cOID"]: o for o in book(sim)["orders"]}
    assert set(placed) == {p.intent_id(run) for p in plans} and book(sim)["pending"] == []
    for intent in report.intents:
        order = placed[intent.coid]
        assert intent.status == "filled" and intent.broker_order_id == str(order["order_id"])
        assert intent.filled_quantity == order["filled"] == intent.quantity
        assert intent.avg_fill_price == pytest.approx(order["avg_price"])
        assert intent.account_id == "DU1234567" and intent.conid == order["conid"]
    events = _events(clean_db, report.intents[0].intent_id)
    assert [(e["kind"], e["status"]) for e in events] == [
        ("status", "pending"), ("status", "submitted"), ("status", "acknowledged"), ("fill", "filled")]
    assert "confirmed o163, o451" in events[2]["message"] and events[2]["payload"]["order_id"]
    assert events[3]["filled_quantity"] == 2 and events[3]["avg_price"] > 0

    # Re-running the same (dag_id, run_id) after success reads the ledger and sends nothing.
    posts = order_posts(sim)
    again = execute_intents(plans, run_ctx("paper-1", try_number=2), dsn=clean_db, broker=client)
    assert order_posts(sim) == posts and len(again.skipped) == 3 and again.submitted == []
    assert max(orders_by_coid(sim).values()) == 1 and len(book(sim)["orders"]) == 3

    # The monitor's refresh adds one fill event per execution, idempotently.
    refreshed = refresh_intents(clean_db, client, run_id="paper-1")
    assert refreshed == []  # all filled: nothing open to refresh
    executions = rows(clean_db, "SELECT count(*) FROM trading.order_events WHERE execution_id IS NOT NULL")
    assert executions == [(0,)]


def test_working_orders_are_refreshed_later_with_their_executions(clean_db):
    from sim.ibkr.config import SimulatorConfig
    from sim.ibkr.server import SimulatorServer

    # market_hours fill mode on a Saturday: the order waits (PreSubmitted) until the clock reaches a session.
    with SimulatorServer(SimulatorConfig(fill_mode="market_hours", rate_limits=False, questions=(),
                                         now=_dt("2025-01-04T15:00:00+00:00"))) as weekend, \
            make_client(weekend) as client:  # fmt: skip
        run = run_ctx("monitor-1")
        report = execute_intents([plan("MSFT", qty=5)], run, dsn=clean_db, broker=client)
        (intent,) = report.intents
        assert (intent.status, intent.broker_status, intent.filled_quantity) == ("acknowledged", "PreSubmitted", 0)
        admin(weekend, "/clock", {"now": "2025-01-06T15:00:00Z", "keep_session": True})  # Monday, open
        (after,) = refresh_intents(clean_db, client, run_id="monitor-1")
        assert (after.status, after.filled_quantity) == ("filled", 5)
        fills = rows(clean_db, "SELECT execution_id, filled_quantity FROM trading.order_events"
                               " WHERE intent_id = %s AND execution_id IS NOT NULL", (intent.intent_id,))
        assert len(fills) == 1 and fills[0][1] == 5
        refresh_intents(clean_db, client, intent_ids=[intent.intent_id])  # filled: nothing left to do
        assert len(_events(clean_db, intent.intent_id)) == 5  # pending, submitted, acknowledged, fill, execution


def _dt(text: str):
    from datetime import datetime

    return datetime.fromisoformat(text)


def test_live_mode_without_opt_in_fails_before_any_order(clean_db, sim, client, monkeypatch):
    monkeypatch.delenv("ALLOW_LIVE_TRADING", raising=False)
    admin(sim, "/stats/reset")
    with pytest.raises(LiveTradingNotAllowed, match="got None, not 'yes'"):
        execute_intents([plan("TSLA")], run_ctx("live-1", mode="live"), dsn=clean_db, broker=client)
    assert stats_requests(sim) == 0
    assert rows(clean_db, "SELECT to_regclass('trading.order_intents')") == [(None,)]  # nothing written
    monkeypatch.setenv("ALLOW_LIVE_TRADING", "yes")
    report = execute_intents([plan("TSLA")], run_ctx("live-1", mode="live"), dsn=clean_db, broker=client)
    assert [i.status for i in report.intents] == ["filled"] and report.intents[0].mode == "live"


def stats_requests(sim) -> int:
    from tests.execution.support import stats

    return stats(sim)["requests"]


def test_paper_mode_refuses_a_live_account_and_a_mode_switch(clean_db, sim):
    with make_client(sim, account_id="U7654321") as live_account, \
            pytest.raises(ExecutionError, match="not a paper"):  # fmt: skip
        execute_intents([plan("TSLA")], run_ctx("acct-1"), dsn=clean_db, broker=live_account)
    assert book(sim)["orders"] == [] and _ledger(clean_db, "acct-1") == []
    # dry_run and paper keep separate decisions: a dry run of the session does not stand in for the paper order.
    execute_intents([plan("TSLA")], run_ctx("switch-1", mode="dry_run"), dsn=clean_db)
    with make_client(sim) as client:
        paper = execute_intents([plan("TSLA")], run_ctx("switch-2"), dsn=clean_db, broker=client)
    assert [i.status for i in paper.intents] in (["acknowledged"], ["filled"]) and len(book(sim)["orders"]) == 1
    with pytest.raises(IntentConflictError, match="two approved orders for TSLA"):
        execute_intents([plan("TSLA"), plan("TSLA", "SELL")], run_ctx("dup-1", mode="dry_run"), dsn=clean_db)


def test_unknown_symbol_and_broker_rejection_do_not_stop_the_others(clean_db, sim, client):
    plans = [plan("ZZZZQ"), plan("TSLA", qty=1e9), plan("NVDA")]  # unknown; beyond buying power; fine
    with pytest.raises(OrderExecutionError) as caught:
        execute_intents(plans, run_ctx("mixed-1"), dsn=clean_db, broker=client)
    err = caught.value
    text = str(err)
    assert "ZZZZQ" in text and "UnknownSymbolError" in text
    by_symbol = {i.symbol: i for i in err.report.intents}
    assert by_symbol["NVDA"].status == "filled"
    assert by_symbol["ZZZZQ"].status == "failed" and by_symbol["ZZZZQ"].conid is None
    assert by_symbol["TSLA"].status == "rejected" and by_symbol["TSLA"].broker_status == "Inactive"
    assert "BUY TSLA intent" in text and "'Inactive'" in text and "ledger status 'rejected'" in text
    assert max(orders_by_coid(sim).values()) == 1
