"""Runs by explicit id across processes: start, resume elsewhere, end; params/metrics/artifacts as MLflow sees them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from include.tracking import RunLogger, end_run, mlflow_status, start_run

REPO = Path(__file__).resolve().parents[2]


def _artifacts(client, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for info in client.list_artifacts(run_id, path):
        found |= _artifacts(client, run_id, info.path) if info.is_dir else {info.path}
    return found


def test_run_started_here_is_resumed_in_another_process_and_ended_failed(mlflow_store, mlflow_client, monkeypatch):
    monkeypatch.setenv("GIT_SHA", "abc123")
    run_id = start_run("it-runs", dag_id="ibkr_trading_strategy", run_id="manual__2025-01-02", try_number=1,
                       params={"symbols": ["TSLA", "NVDA"], "mode": "dry_run"})  # fmt: skip
    # A later task is another process that only knows the run id (from XCom).
    child = textwrap.dedent(f"""
        from include.tracking import RunLogger
        logger = RunLogger({run_id!r})
        logger.log_params({{"strategy": "sma_cross", "lookback": 20}})
        logger.log_metrics({{"signals": 2, "pnl": -1.5}}, step=1)
        logger.log_metrics({{"signals": 3}}, step=2)
        logger.log_dict({{"orders": [{{"symbol": "TSLA", "qty": 1}}]}}, "orders.json")
        logger.set_tags({{"risk_veto": True}})
    """)
    subprocess.run([sys.executable, "-c", child], cwd=REPO, check=True, capture_output=True, timeout=120)
    assert end_run(run_id, "failed") == "FAILED"

    run = mlflow_client.get_run(run_id)
    assert run.info.status == "FAILED" and run.info.end_time is not None
    assert run.info.run_name == "ibkr_trading_strategy__manual__2025-01-02"
    assert run.data.params == {"symbols": '["TSLA", "NVDA"]', "mode": "dry_run", "strategy": "sma_cross",
                               "lookback": "20"}  # fmt: skip
    tags = run.data.tags
    assert (tags["dag_id"], tags["run_id"], tags["try_number"], tags["git_sha"], tags["risk_veto"]) == (
        "ibkr_trading_strategy", "manual__2025-01-02", "1", "abc123", "True"
    )
    assert run.data.metrics == {"signals": 3.0, "pnl": -1.5}
    assert [m.step for m in mlflow_client.get_metric_history(run_id, "signals")] == [1, 2]
    assert _artifacts(mlflow_client, run_id) == {"orders.json"}
    assert run.info.artifact_uri.startswith((mlflow_store / "artifacts" / "it-runs").as_uri())


def test_end_run_twice_keeps_the_first_end_and_none_is_a_no_op(mlflow_store, mlflow_client):
    run_id = start_run("it-end", dag_id="d", run_id="r1")
    assert end_run(run_id, "success") == "FINISHED"
    first_end = mlflow_client.get_run(run_id).info.end_time
    assert end_run(run_id, "success") == "FINISHED"
    assert mlflow_client.get_run(run_id).info.end_time == first_end
    assert end_run(None, "failed") is None


def test_retry_of_the_start_task_reopens_the_same_run(mlflow_store, mlflow_client):
    first = start_run("it-retry", dag_id="d", run_id="scheduled__1", try_number=1, params={"a": 1})
    end_run(first, "up_for_retry")
    second = start_run("it-retry", dag_id="d", run_id="scheduled__1", try_number=2, params={"a": 1})
    other = start_run("it-retry", dag_id="d", run_id="scheduled__2", try_number=1)
    assert second == first != other
    run = mlflow_client.get_run(first)
    assert run.info.status == "RUNNING"
    assert run.data.tags["try_number"] == "2"


@pytest.mark.parametrize(
    ("outcome", "status"),
    [("success", "FINISHED"), ("skipped", "FINISHED"), ("failed", "FAILED"), ("upstream_failed", "FAILED"),
     ("removed", "KILLED"), ("FINISHED", "FINISHED"), ("KILLED", "KILLED")],
)  # fmt: skip
def test_airflow_outcomes_map_to_mlflow_statuses(outcome, status):
    assert mlflow_status(outcome) == status


def test_airflow_state_enums_are_accepted_and_unknown_outcomes_refused():
    from airflow.utils.state import DagRunState, TaskInstanceState

    assert mlflow_status(TaskInstanceState.UPSTREAM_FAILED) == "FAILED"
    assert mlflow_status(DagRunState.SUCCESS) == "FINISHED"
    with pytest.raises(ValueError, match="unknown run outcome"):
        mlflow_status("running")


def test_long_params_are_truncated_and_kept_whole_as_artifacts(mlflow_store, mlflow_client):
    run_id = start_run("it-params", dag_id="d", run_id="r")
    long_value = "TSLA," * 2000  # 10,000 characters: MLflow's param limit is 6,000
    RunLogger(run_id).log_params({"universe": long_value, "n": 1})
    run = mlflow_client.get_run(run_id)
    assert len(run.data.params["universe"]) == 6000
    assert run.data.params["universe"].endswith("full value in artifact params/universe.txt]")
    path = mlflow_client.download_artifacts(run_id, "params/universe.txt", str(mlflow_store))
    assert Path(path).read_text() == long_value


def test_params_are_write_once_unless_changes_go_to_tags(mlflow_store, mlflow_client):
    logger = RunLogger(start_run("it-conflict", dag_id="d", run_id="r"))
    logger.log_params({"status": "failed", "k": "v"})
    logger.log_params({"status": "failed", "k": "v"})  # a retry logging the same values is fine
    with pytest.raises(ValueError, match=r"write-once.*status"):
        logger.log_params({"status": "passed"})
    logger.log_params({"status": "passed", "new": 1}, on_change="tag")
    run = mlflow_client.get_run(logger.run_id)
    assert run.data.params == {"status": "failed", "k": "v", "new": "1"}
    assert run.data.tags["param.status"] == "passed"


def test_batches_past_mlflow_limits_and_non_numeric_metrics(mlflow_store, mlflow_client):
    logger = RunLogger(start_run("it-batch", dag_id="d", run_id="r"))
    logger.log_batch(params={f"p{i}": i for i in range(150)}, metrics={f"m{i}": i for i in range(1200)})
    run = mlflow_client.get_run(logger.run_id)
    assert len(run.data.params) == 150 and len(run.data.metrics) == 1200
    with pytest.raises(TypeError, match="metric 'bad' must be a number"):
        logger.log_metrics({"bad": "n/a"})


def test_file_directory_and_sample_artifacts(mlflow_store, mlflow_client, tmp_path):
    import pandas as pd

    report = tmp_path / "report"
    (report / "nested").mkdir(parents=True)
    (report / "index.html").write_text("<html/>")
    (report / "nested" / "suite.json").write_text("{}")
    single = tmp_path / "summary.txt"
    single.write_text("ok")
    logger = RunLogger(start_run("it-artifacts", dag_id="d", run_id="r"))
    logger.log_file(report, "validation")
    logger.log_file(single)
    logger.log_text("SELECT 1", "sql/query.sql")
    logger.log_dataframe_sample(pd.DataFrame({"symbol": ["TSLA"] * 500, "close": range(500)}), "bars.csv", rows=10)
    written = logger.log_rows_sample(["a", "b"], [(1, None), (2, "x"), (3, "y")], "rows.csv", limit=2)
    with pytest.raises(FileNotFoundError):
        logger.log_file(tmp_path / "missing.html")
    assert written == 2
    assert _artifacts(mlflow_client, logger.run_id) == {
        "validation/report/index.html", "validation/report/nested/suite.json", "summary.txt", "sql/query.sql",
        "bars.csv", "rows.csv",
    }  # fmt: skip
    bars = Path(mlflow_client.download_artifacts(logger.run_id, "bars.csv", str(tmp_path))).read_text()
    assert bars.splitlines()[0] == "symbol,close" and len(bars.splitlines()) == 11
    rows = Path(mlflow_client.download_artifacts(logger.run_id, "rows.csv", str(tmp_path))).read_text()
    assert rows == "a,b\n1,\n2,x\n"
