"""``ibkr_portfolio_monitor`` end to end with ``dag.test()``: paper fills, then a position injected outside the
system: snapshot -> Cosmos dbt_portfolio group -> reconcile (HALTED, alert) -> MLflow run ibkr-portfolio."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.risk.state_store import read_state
from tests.execution.support import admin, rows
from tests.portfolio.conftest import clean_db as clean_db  # fixture: without the portfolio raw tables
from tests.portfolio.conftest import client as client  # fixture
from tests.portfolio.conftest import paper_fills as paper_fills  # fixture
from tests.portfolio.conftest import sim as sim  # fixture
from tests.portfolio.conftest import webhook as webhook  # fixture

pytestmark = pytest.mark.airflow


def test_monitor_dag_snapshots_models_reconciles_halts_and_logs(run_dag, dagbag, stack_env, sim, paper_fills,
                                                                 webhook):
    dag = dagbag.dags["ibkr_portfolio_monitor"]
    assert "dbt_portfolio" in dag.task_group.children  # the dbt models show as a task group
    assert not [t for t in dagbag.dags["market_data_models"].task_ids if "portfolio" in t]
    dsn = stack_env["MARKET_DB_URL"]
    paper_fills("r1", [("AAPL", "BUY", 10), ("MSFT", "BUY", 5)])
    paper_fills("r2", [("AAPL", "SELL", 4)])
    admin(sim, "/positions", {"symbol": "TSLA", "qty": 3, "avg_cost": 250})

    state, tasks = run_dag("ibkr_portfolio_monitor")
    assert state == "success", tasks
    assert {t: s for t, s in tasks.items() if s != "success"} == {}
    assert tasks["dbt_portfolio.fct_portfolio_pnl_model_build"] == "success"

    halted = read_state(dsn)
    assert halted.state == "HALTED" and "TSLA: broker holds 3" in halted.reason
    assert halted.changed_by.startswith("airflow:ibkr_portfolio_monitor/")
    assert [h["event"] for h in webhook] == ["reconciliation_mismatch"]
    ((status, count, mismatches),) = rows(dsn, "SELECT status, mismatch_count, mismatches FROM trading.reconciliations")
    assert (status, count, mismatches[0]["kind"], mismatches[0]["symbol"]) == ("mismatch", 1, "unknown_position",
                                                                               "TSLA")
    pnl = dict(rows(dsn, "SELECT symbol, quantity FROM analytics_marts.fct_portfolio_pnl"))
    assert pnl == {"AAPL": 6.0, "MSFT": 5.0, "TSLA": 3.0}
    ((equity, gross, net, realized, unrealized),) = rows(
        dsn, "SELECT equity, gross_exposure, net_exposure, realized_pnl, unrealized_pnl"
             " FROM analytics_marts.fct_portfolio_exposure")

    from include.tracking import client

    mlflow = client()
    experiment = mlflow.get_experiment_by_name("ibkr-portfolio")
    (run,) = mlflow.search_runs([experiment.experiment_id])
    m = run.data.metrics
    assert run.info.status == "FINISHED" and run.data.tags["reconciliation"] == "mismatch"
    assert (m["mismatches"], m["halted"]) == (1, 1)
    assert m["equity"] == pytest.approx(equity) and m["gross_exposure"] == pytest.approx(gross) and gross > 0
    assert m["net_exposure"] == pytest.approx(net) and m["realized_pnl"] == pytest.approx(realized)
    assert m["unrealized_pnl"] == pytest.approx(unrealized) and m["max_drawdown"] == 0 and m["drawdown"] == 0
    report = json.loads(Path(mlflow.download_artifacts(run.info.run_id, "reconciliation/report.json")).read_text())
    assert report["status"] == "mismatch" and report["mismatches"][0]["symbol"] == "TSLA"
