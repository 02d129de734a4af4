"""A failed trading step still logs the guide's metrics it owns (on PostgreSQL and a sqlite MLflow store)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from include.trading.context import TradingRun
from include.trading.step_metrics import guide_metrics


@pytest.fixture
def run(stack_env):
    from include.tracking import start_run

    mlflow_run_id = start_run("step-metrics-test", dag_id="d", run_id=f"r{datetime.now(UTC).timestamp()}")
    return TradingRun(dag_id="d", run_id="manual__1", strategy_id=1, strategy="sma_crossover_20_50", mode="dry_run",
                      symbols=("TSLA", "NVDA"), mlflow_run_id=mlflow_run_id, started_at=datetime.now(UTC),
                      session=date(2026, 12, 3), data_session=date(2026, 12, 2))


def _metrics(run):
    from include.tracking import client

    return client().get_run(run.mlflow_run_id).data.metrics


def test_failed_fetch_logs_symbols_and_time(run):
    with pytest.raises(RuntimeError, match="gateway down"), guide_metrics("fetch_market_data", run):
        raise RuntimeError("gateway down")
    metrics = _metrics(run)
    assert metrics["symbols_count"] == 2 and metrics["fetch_duration_seconds"] >= 0


def test_values_the_step_logged_are_kept_and_disabled_logs_nothing(run):
    from include.tracking import RunLogger

    RunLogger(run.mlflow_run_id).log_metrics({"signal_confidence": 0.8})
    with pytest.raises(ValueError), guide_metrics("generate_signals", run):
        raise ValueError("LLM answer unusable")
    with pytest.raises(ValueError), guide_metrics("read_features", run, enabled=False):
        raise ValueError("no mart")
    assert _metrics(run) == {"signal_confidence": 0.8}
    with pytest.raises(ValueError, match="unknown trading step"), guide_metrics("assess_risk", run):
        pass


def test_failed_order_step_logs_what_the_ledger_holds_for_the_run(run):
    from include.execution import OrderPlan, RunContext, execute_intents
    from include.settings import load_settings

    dsn = load_settings().require_market_db_url()
    plan = OrderPlan(strategy_id=1, symbol="TSLA", side="BUY", quantity=4, ref_price=100.0, limit_price=100.5,
                     session_date=run.session)
    execute_intents([plan], RunContext(dag_id=run.dag_id, run_id=run.run_id, mode="dry_run"), dsn=dsn)
    other = OrderPlan(strategy_id=1, symbol="NVDA", side="BUY", quantity=9, ref_price=10.0, limit_price=10.0,
                      session_date=run.session)
    execute_intents([other], RunContext(dag_id=run.dag_id, run_id="another_run", mode="dry_run"), dsn=dsn)
    with pytest.raises(ConnectionError), guide_metrics("place_orders", run):
        raise ConnectionError("lost the database after recording")
    metrics = _metrics(run)
    assert metrics["order_quantity"] == 4 and metrics["order_value"] == pytest.approx(402.0)
