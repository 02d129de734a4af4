"""``MLflowTracker``: start_run / log_metrics / log_artifacts / end_run on one run per DAG run."""

from __future__ import annotations

import pytest

from include.tracking import MLflowTracker


class _TI:
    dag_id, try_number = "my_dag", 1

    def __init__(self):
        self.pushed = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


def test_start_log_end_and_resume(mlflow_store, mlflow_client, tmp_path):
    ti = _TI()
    tracker = MLflowTracker(strategy="momentum")
    assert tracker.experiment_name == "ibkr-strategy-momentum"  # workflow.yaml's experiment_name
    run_id = tracker.start_run({"ti": ti, "run_id": "manual__1"}, params={"symbols": ["AAPL"]})
    assert ti.pushed == {"mlflow_run_id": run_id}  # the "MLflow run" extra link finds it
    assert MLflowTracker(strategy="momentum").start_run(dag_id="my_dag", run_id="manual__1") == run_id  # reopened

    later = MLflowTracker.resume(run_id)  # another task, with the id from XCom
    later.log_metrics({"symbols_count": 1, "order_value": 450.5, "skipped": None})
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "summary.txt").write_text("ok")
    (tmp_path / "chart.png").write_bytes(b"png")
    later.log_artifacts(tmp_path / "chart.png", "charts")
    later.log_artifacts(tmp_path / "report")
    assert later.end_run("failed") == "FAILED"

    run = mlflow_client.get_run(run_id)
    assert run.info.status == "FAILED" and run.data.params["symbols"] == '["AAPL"]'
    assert run.data.metrics == {"symbols_count": 1.0, "order_value": 450.5}
    assert run.data.tags["dag_id"] == "my_dag" and run.data.tags["run_id"] == "manual__1"
    paths = {a.path for a in mlflow_client.list_artifacts(run_id)}
    assert paths == {"charts", "report"}


def test_explicit_experiment_and_clear_errors(mlflow_store, mlflow_client):
    tracker = MLflowTracker("ibkr_trading_workflows")
    with pytest.raises(RuntimeError, match="call start_run"):
        tracker.log_metrics({"x": 1})
    with pytest.raises(ValueError, match="dag_id and run_id"):
        tracker.start_run()
    run_id = tracker.start_run(dag_id="d", run_id="r")
    assert mlflow_client.get_experiment(mlflow_client.get_run(run_id).info.experiment_id).name == \
        "ibkr_trading_workflows"
    assert tracker.end_run() == "FINISHED" and tracker.end_run() == "FINISHED"  # a repeat changes nothing
    with pytest.raises(ValueError, match="needs a strategy name"):
        _ = MLflowTracker().experiment_name
