"""The portfolio snapshot against the simulator after paper orders filled: every table loaded in one transaction,
what the gateway reported, and a re-run of the same DAG run replacing (not duplicating) its snapshot."""

from __future__ import annotations

import pytest

from tests.execution.support import admin, rows


def test_snapshot_loads_positions_summary_ledger_orders_and_trades(clean_db, sim, client, paper_fills, snapshot):
    report = paper_fills("r1", [("AAPL", "BUY", 10), ("MSFT", "BUY", 4)])
    assert {i.status for i in report.intents} == {"filled"}
    paper_fills("r2", [("AAPL", "SELL", 3)])
    counts = snapshot("ibkr_portfolio_monitor/run-1")
    assert counts["positions"] == 2 and counts["trades"] == 3 and counts["new_trades"] == 3

    positions = {p.symbol: p for p in client.positions()}
    stored = rows(clean_db, "SELECT symbol, quantity, avg_cost, market_value FROM raw.portfolio_positions"
                            " WHERE run_key = 'ibkr_portfolio_monitor/run-1' ORDER BY symbol")
    assert [(s, q) for s, q, _, _ in stored] == [("AAPL", 7.0), ("MSFT", 4.0)]
    assert all(avg == pytest.approx(positions[s].avg_cost) for s, _, avg, _ in stored)
    intents = {r[0]: r[1] for r in rows(clean_db, "SELECT coid, symbol FROM trading.order_intents")}
    trades = rows(clean_db, "SELECT coid, symbol, side, quantity FROM raw.broker_trades ORDER BY trade_at")
    assert sorted((intents[c], s, side, q) for c, s, side, q in trades) == [
        ("AAPL", "AAPL", "BUY", 10.0), ("AAPL", "AAPL", "SELL", 3.0), ("MSFT", "MSFT", "BUY", 4.0)]
    ((netliq, cash, acct),) = rows(clean_db, "SELECT net_liquidation, total_cash, account_id FROM raw.account_summary")
    summary = client.account_summary()
    assert acct == client.account_id and cash == pytest.approx(summary.total_cash)
    assert netliq == pytest.approx(summary.net_liquidation, abs=1.0)  # marks move with the simulator's clock
    assert {r[0] for r in rows(clean_db, "SELECT currency FROM raw.account_ledger")} == {"USD", "BASE"}
    assert rows(clean_db, "SELECT count(*), bool_and(status = 'Filled') FROM raw.broker_orders") == [(3, True)]


def test_rerun_replaces_its_snapshot_and_keeps_executions_once(clean_db, sim, paper_fills, snapshot):
    paper_fills("r1", [("AAPL", "BUY", 5)])
    snapshot("dag/run-1")
    admin(sim, "/positions", {"symbol": "NVDA", "qty": 2, "avg_cost": 100})
    again = snapshot("dag/run-1")  # the same DAG run retried: its rows are replaced
    snapshot("dag/run-2")
    assert again["new_trades"] == 0
    assert rows(clean_db, "SELECT run_key, string_agg(symbol, ',' ORDER BY symbol) FROM raw.portfolio_positions"
                          " GROUP BY 1 ORDER BY 1") == [("dag/run-1", "AAPL,NVDA"), ("dag/run-2", "AAPL,NVDA")]
    assert rows(clean_db, "SELECT count(*) FROM raw.account_summary") == [(2,)]
    assert rows(clean_db, "SELECT count(*), min(first_run_key) FROM raw.broker_trades") == [(1, "dag/run-1")]


def test_unreachable_gateway_is_an_error(clean_db):
    from include.ibkr.client import IBKRClient
    from include.ibkr.errors import IBKRError
    from include.portfolio.loaders import fetch_snapshot

    with IBKRClient("http://127.0.0.1:9/v1/api", rate_per_sec=None, endpoint_pacing=False, backoff_initial=0.01,
                    backoff_max=0.02, timeout=1.0, account_id="DU1") as dead, pytest.raises((IBKRError, OSError)):
        fetch_snapshot(dead, clean_db, "dag/run-x")
    assert rows(clean_db, "SELECT to_regclass('raw.account_summary')") == [(None,)]  # nothing loaded
