"""End to end with ``dag.test()``: ``train_signal_model`` registers the champion, then ``ibkr_trading_strategy``
with an ``ml`` strategy (dry run) produces its signals from that model."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tests.ml.conftest import model_name as model_name  # fixture
from tests.ml.ml_mart import build_mart, momentum_bars

pytestmark = [pytest.mark.airflow, pytest.mark.slow]
STRATEGY = """
version: 1
strategies:
  - id: 11
    name: ml_test
    symbols: [TSLA, NVDA]
    schedule: "@daily"
    signal: {{model: ml, registered_model: {name}, alias: champion, threshold: 0.52}}
    mode: dry_run
"""


def test_train_then_trade_with_the_champion(run_dag, stack_env, model_name, simulator, tmp_path, monkeypatch):
    from include.ml.registry import ModelNotFoundError
    from include.tracking import client
    from include.trading import tasks as trading
    from include.trading.context import TradingRun

    dsn = stack_env["MARKET_DB_URL"]
    momentum_bars(dsn, simulator, symbols=("TSLA", "NVDA"), sessions=320)
    build_mart(dsn, tmp_path / "dbt-target")
    file = tmp_path / "strategies.yaml"
    file.write_text(STRATEGY.format(name=model_name))
    monkeypatch.setenv("STRATEGIES_FILE", str(file))

    # No champion yet: the trading run's environment check fails loudly instead of trading on HOLDs.
    with pytest.raises(ModelNotFoundError, match=f"models:/{model_name}@champion"):
        trading.validate_environment(TradingRun(
            dag_id="ibkr_trading_strategy", run_id="manual__check", strategy_id=11, strategy=model_name,
            mode="dry_run", symbols=("TSLA", "NVDA"), mlflow_run_id="-", started_at=datetime.now(UTC),
            session=date(2026, 1, 5), data_session=date(2026, 1, 2)))

    state, tasks = run_dag("train_signal_model", {"model_type": "logistic_regression", "holdout_fraction": 0.25})
    assert state == "success", tasks
    mlflow = client()
    champion = mlflow.get_model_version_by_alias(model_name, "champion")
    assert str(champion.version) == "1" and champion.tags["promoted"] == "true"
    experiment = mlflow.get_experiment_by_name("ibkr-signal-model")
    (run,) = mlflow.search_runs([experiment.experiment_id], filter_string=f"tags.registered_model = '{model_name}'")
    assert run.info.status == "FINISHED" and run.data.tags["dag_id"] == "train_signal_model"
    assert run.info.run_id == champion.run_id and run.data.params["symbols"] == "NVDA,TSLA"
    assert run.data.metrics["promoted"] == 1.0 and 0 <= run.data.metrics["holdout_roc_auc"] <= 1
    assert "holdout" in {a.path for a in mlflow.list_artifacts(run.info.run_id)}

    state, tasks = run_dag("ibkr_trading_strategy", {"strategy_id": 11, "dry_run": True, "ignore_market_hours": True})
    assert state == "success", tasks
    strategy_exp = mlflow.get_experiment_by_name("ibkr-strategy-ml_test")
    (trade,) = mlflow.search_runs([strategy_exp.experiment_id])
    assert trade.data.params["signal_model"] == "ml"
    signals = json.loads(Path(mlflow.download_artifacts(trade.info.run_id, "signals/signals.json")).read_text())
    assert [s["symbol"] for s in signals] == ["TSLA", "NVDA"]
    for signal in signals:  # every signal came out of champion v1, with its probability as confidence
        assert signal["model"] == "ml" and signal["inputs"]["model_version"] == "1", signal
        p_up = signal["inputs"]["p_up"]
        expected = {"BUY": p_up, "SELL": 1 - p_up, "HOLD": 0.0}[signal["action"]]
        assert signal["confidence"] == pytest.approx(expected, abs=1e-6), signal
        assert (signal["action"] == "HOLD") == (max(p_up, 1 - p_up) < 0.52)
