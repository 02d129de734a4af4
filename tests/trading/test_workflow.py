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
