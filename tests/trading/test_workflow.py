"""``create_trading_dag``: the guide's factory over ``build_trading_dag`` (parameters, defaults, clear errors)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from include.config import UnknownStrategyError
from include.trading.workflow import create_trading_dag


def test_guide_arguments_become_the_params_defaults():
    dag = create_trading_dag("strategy_1", strategy_id=1, schedule="0 9 * * 1-5", symbols=["aapl", "GOOGL"],
                             description="My momentum strategy", start_date=datetime(2025, 6, 2))
    assert dag.params["strategy_id"] == 1 and dag.params["symbols"] == ["AAPL", "GOOGL"]
    assert dag.params["dry_run"] is True and dag.params["mode"] is None
    assert dag.description == "My momentum strategy" and dag.catchup is False and dag.max_active_runs == 1
    assert dag.start_date.date().isoformat() == "2025-06-02"
    assert {t.task_id for t in dag.tasks} >= {"start_mlflow_run", "market_open", "ibkr_auth", "fetch_market_data",
                                              "generate_signals", "assess_risk", "place_orders", "end_mlflow_run"}


def test_defaults_from_workflow_yaml_and_overrides():
    dag = create_trading_dag("s", strategy_id=2, schedule=None)
    assert dag.params["symbols"] is None  # the strategy's own
    task = dag.get_task("place_orders")
    assert (task.owner, task.retries, task.retry_delay) == ("trading", 2, timedelta(seconds=30))
    dag = create_trading_dag("s", strategy_id=2, dry_run=False, mode="paper", default_args={"retries": 5},
                             tags=["risk"])
    assert dag.params["dry_run"] is False and dag.params["mode"] == "paper"
    assert dag.get_task("place_orders").retries == 5 and set(dag.tags) == {"trading", "risk"}


def test_clear_errors_at_parse_time():
    with pytest.raises(UnknownStrategyError, match="unknown strategy_id 99"):
        create_trading_dag("s", strategy_id=99)
    with pytest.raises(ValueError, match="mode must be 'paper' or 'live'"):
        create_trading_dag("s", strategy_id=1, dry_run=False, mode="dry_run")


def test_the_checks_run_side_by_side_and_every_data_step_waits_for_all_of_them():
    """The critical path to the orders (issue #14, P8): the market wait starts beside the MLflow run, the environment
    check (right at the trigger) beside the wait and the gateway gate; nothing reads data, makes a signal or places
    an order before all four passed."""
    dag = create_trading_dag("s", strategy_id=1)
    checks = {"start_mlflow_run", "market_open", "validate_environment", "ibkr_auth"}
    assert {t.task_id for t in dag.roots} == {"start_mlflow_run", "market_open"}
    assert dag.get_task("validate_environment").upstream_task_ids == {"start_mlflow_run"}
    assert dag.get_task("ibkr_auth").upstream_task_ids == {"start_mlflow_run", "market_open"}
    for step in ("fetch_market_data", "backfill_symbols", "read_features", "generate_signals", "assess_risk",
                 "place_orders", "render_charts"):
        assert checks <= dag.get_task(step).get_flat_relative_ids(upstream=True), step

    def chain(task_id: str) -> list[str]:  # the longest path of tasks ending in task_id
        task = dag.get_task(task_id)
        return [*max((chain(u) for u in task.upstream_task_ids), key=len, default=[]), task_id]

    assert len(chain("place_orders")) - 1 == 6  # tasks one after another before the orders (8 before the change)
