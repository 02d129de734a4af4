"""The keepalive DAG and the trading DAG's gate under ``dag.test()`` against the simulator."""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg2
import pytest

from tests.gateway.conftest import set_session
from tests.gateway.conftest import webhook as webhook  # fixture

pytestmark = pytest.mark.airflow

STRATEGY = """
version: 1
strategies:
  - id: 7
    name: gate_test
    symbols: [TSLA]
    schedule: "@daily"
    signal: {model: rsi_mean_reversion, oversold: 30, overbought: 70, full_confidence_distance: 15}
    mode: paper
"""


def _rows(dsn, sql):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_keepalive_dag_records_the_check_and_alerts_on_a_flip(run_dag, stack_env, simulator, webhook, caplog):
    dsn = stack_env["MARKET_DB_URL"]
    state, tasks = run_dag("ibkr_gateway_keepalive")
    assert (state, tasks) == ("success", {"tickle_gateway": "success"})

    set_session(simulator, state="authenticated", competing=True)
    state, tasks = run_dag("ibkr_gateway_keepalive")
    assert (state, tasks) == ("success", {"tickle_gateway": "success"})  # a result, not a task failure
    assert "IBKR gateway unhealthy (check 2)" in caplog.text
    rows = _rows(dsn, "SELECT source, state, alert_event, dag_id FROM ops.gateway_health ORDER BY check_id")
    assert rows == [
        ("keepalive", "healthy", None, "ibkr_gateway_keepalive"),
        ("keepalive", "competing", "gateway_unhealthy", "ibkr_gateway_keepalive"),
    ]
    assert [a["event"] for a in webhook] == ["gateway_unhealthy"]


def test_trading_run_skips_while_the_gateway_is_unhealthy(
    run_dag, stack_env, simulator, tmp_path, monkeypatch, caplog, capfd
):
    dsn = stack_env["MARKET_DB_URL"]
    file = Path(tmp_path / "strategies.yaml")
    file.write_text(STRATEGY)
    monkeypatch.setenv("STRATEGIES_FILE", str(file))
    # an empty mart: the gate stops the run before backfill_symbols or read_features would look at it
    _rows(
        dsn, "CREATE SCHEMA analytics_marts; CREATE TABLE analytics_marts.fct_latest_features (symbol text); SELECT 1"
    )
    set_session(simulator, state="authenticated", competing=True)  # e.g. the trader logged in to TWS
    monkeypatch.setenv("TRADING_CLOCK", "2026-01-05T15:30:00+00:00")  # a Monday, 10:30 New York: the market is open

    state, tasks = run_dag(
        "ibkr_trading_strategy", {"strategy_id": 7, "dry_run": False, "mode": "paper", "ignore_market_hours": False}
    )
    assert state == "success", tasks
    for task_id in (
        "ibkr_auth",
        "fetch_market_data",
        "read_features",
        "generate_signals",
        "assess_risk",
        "place_orders",
        "render_charts",
    ):
        assert tasks[task_id] == "skipped", (task_id, tasks)
    assert tasks["end_mlflow_run"] == "success" and tasks["cleanup"] == "success"
    logged = caplog.text + "".join(capfd.readouterr())  # the operator's log goes to stdout under dag.test()
    assert "IBKR gateway unhealthy, not trading: gateway competing" in logged

    ((intents_table,),) = _rows(dsn, "SELECT to_regclass('trading.order_intents') IS NOT NULL")
    if intents_table:  # no order intent (the table exists only once the execution package ran)
        assert _rows(dsn, "SELECT count(*) FROM trading.order_intents") == [(0,)]
    assert httpx.get(f"{simulator.admin_url}/orders").json()["orders"] == []
    assert _rows(dsn, "SELECT source, state, dag_id FROM ops.gateway_health") == [
        ("trading_gate", "competing", "ibkr_trading_strategy")
    ]

    from include.tracking import client

    mlflow = client()
    experiment = mlflow.get_experiment_by_name("ibkr-strategy-gate_test")
    (run,) = mlflow.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"  # the teardown still closed the run
    assert run.data.tags["trading_skipped"] == "gateway_unhealthy" and run.data.tags["gateway_state"] == "competing"
    assert "competing=True" in run.data.tags["skip_reason"]
