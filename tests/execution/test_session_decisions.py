"""One decision per (strategy, symbol, session, mode), whatever the runs: orders counted in the simulator's book."""

from __future__ import annotations

from datetime import date

import pytest

from include.execution import RunContext, execute_intents
from include.execution.ledger import connect, orders_today, session_decisions, working_intents
from tests.execution.support import book, orders_by_coid, plan, rows, run_ctx


def test_other_runs_and_dags_of_the_same_session_send_nothing_new(clean_db, sim, client):
    first = execute_intents([plan("TSLA"), plan("NVDA", qty=2)], run_ctx("manual__1"), dsn=clean_db, broker=client)
    assert len(first.submitted) == 2
    other_dag = RunContext(dag_id="strategy_sma_crossover_20_50", run_id="asset_triggered__4", mode="paper")
    for ctx in (run_ctx("manual__2"), other_dag):
        again = execute_intents([plan("TSLA", qty=5), plan("NVDA", "SELL")], ctx, dsn=clean_db, broker=client)
        assert again.submitted == [] and len(again.skipped) == 2  # decided by manual__1: not taken again
    assert sorted(orders_by_coid(sim).values()) == [1, 1] and len(book(sim)["orders"]) == 2
    # The next session is a new decision.
    nxt = execute_intents([plan("TSLA", session=date(2026, 1, 6))], run_ctx("manual__5"), dsn=clean_db, broker=client)
    assert len(nxt.submitted) == 1 and len(book(sim)["orders"]) == 3
    conn = connect(clean_db)
    try:
        assert {i.symbol for i in session_decisions(conn, 1, date(2026, 1, 5), "paper")} == {"TSLA", "NVDA"}
        assert orders_today(conn, "paper", strategy_id=1, session=date(2026, 1, 5)) == 1  # the other session's
    finally:
        conn.close()


def test_a_refused_recheck_leaves_the_intent_vetoed_and_a_later_run_takes_it_up(clean_db, sim, client):
    halted = lambda cur, intent: "trading is HALTED (test): nothing is submitted"  # noqa: E731
    report = execute_intents([plan("TSLA")], run_ctx("halt-1"), dsn=clean_db, broker=client, gate=halted)
    assert report.submitted == [] and list(report.vetoed.values()) == ["trading is HALTED (test): nothing is submitted"]
    assert book(sim)["orders"] == []
    assert rows(clean_db, "SELECT status, last_error FROM trading.order_intents") == [
        ("vetoed", "trading is HALTED (test): nothing is submitted")]
    # ACTIVE again: the next run of the session re-arms the (never sent) decision and sends it once.
    later = execute_intents([plan("TSLA")], run_ctx("halt-2"), dsn=clean_db, broker=client, gate=lambda c, i: None)
    assert len(later.submitted) == 1 and len(book(sim)["orders"]) == 1
    assert rows(clean_db, "SELECT run_id FROM trading.order_intents") == [("halt-2",)]


def test_working_intents_count_until_final(clean_db, sim, client):
    execute_intents([plan("TSLA", "BUY", order_type="LMT", limit=1.0)], run_ctx("work-1"), dsn=clean_db,
                    broker=client)  # a limit far below the market: it stays working at the broker
    conn = connect(clean_db)
    try:
        (working,) = working_intents(conn, "paper")
        assert working.symbol == "TSLA" and working.status == "acknowledged"
        assert working_intents(conn, "dry_run") == []
    finally:
        conn.close()


@pytest.mark.parametrize("mode", ["dry_run", "paper", "live"])
def test_nothing_approved_is_a_quiet_success_in_every_mode(clean_db, mode, monkeypatch):
    monkeypatch.setenv("ALLOW_LIVE_TRADING", "yes")
    report = execute_intents([], run_ctx("quiet-1", mode=mode), dsn=clean_db)  # no broker needed
    assert report.intents == [] and report.counts()["submitted"] == 0


def test_a_decision_left_unresolved_by_a_dead_run_is_finished_by_the_next_once(clean_db, sim, client):
    from tests.execution.support import fault

    # manual__1 records TSLA and NVDA, the gateway takes TSLA but its answer is lost (unknown), the batch stops:
    # NVDA stays pending. Its retries are used up; a new trigger of the same session finishes both, once each.
    fault(sim, path=r"^/iserver/account/[^/]+/orders$", method="POST", after=True, status=503)
    with pytest.raises(Exception, match="ledger status 'unknown'"):
        execute_intents([plan("TSLA"), plan("NVDA")], run_ctx("manual__1"), dsn=clean_db, broker=client)
    assert dict(rows(clean_db, "SELECT symbol, status FROM trading.order_intents")) == {
        "TSLA": "unknown", "NVDA": "pending"}
    later = execute_intents([plan("TSLA"), plan("NVDA")], run_ctx("manual__2"), dsn=clean_db, broker=client)
    assert len(later.reconciled) == 1 and len(later.submitted) == 1 and later.skipped == []
    assert sorted(orders_by_coid(sim).values()) == [1, 1]
    assert {s for s, in rows(clean_db, "SELECT status FROM trading.order_intents")} <= {"filled", "acknowledged"}
    assert {r for r, in rows(clean_db, "SELECT run_id FROM trading.order_intents")} == {"manual__1"}  # who decided
