"""record_data_run against a real sqlite MLflow store and the real market PostgreSQL; DEBUG_MODE artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.settings import SettingsError
from include.tracking import RunLogger, debug_mode, log_debug_context, record_data_run, start_run

SECRETS = ("hunter2", "s3cr3t-token", "jwt-signing-secret", "conn-pw")


def _artifacts(client, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for info in client.list_artifacts(run_id, path):
        found |= _artifacts(client, run_id, info.path) if info.is_dir else {info.path}
    return found


def _text(client, run_id: str, path: str, tmp_path: Path) -> str:
    return Path(client.download_artifacts(run_id, path, str(tmp_path))).read_text()


@pytest.fixture
def reports(tmp_path: Path) -> list[Path]:
    docs = tmp_path / "data_docs"
    docs.mkdir()
    (docs / "index.html").write_text("<html>validation</html>")
    summary = tmp_path / "validation_summary.json"
    summary.write_text('{"success": true}')
    return [docs, summary]


def _record(market_db_url: str, reports: list[Path], **overrides):
    import pandas as pd

    kwargs = {
        "dag_id": "market_data_models",
        "run_id": "asset_triggered__2025-01-03",
        "try_number": 1,
        "symbols": ["TSLA", "NVDA"],
        "session_start": "2023-01-03",
        "session_end": "2025-01-03",
        "rows_per_layer": {"raw": 1008, "staging": 1008, "marts": 2},
        "checks_passed": 11,
        "checks_failed": 0,
        "validation_status": "passed",
        "samples": {
            "fct_latest_features": pd.DataFrame({"symbol": ["TSLA", "NVDA"], "close": [410.5, 138.2]}),
            "fct_daily_indicators": "SELECT g AS n, g * 2 AS doubled FROM generate_series(1, 500) AS g ORDER BY g",
        },
        "reports": reports,
        "db_url": market_db_url,
        "sample_rows": 50,
    }
    return record_data_run(**{**kwargs, **overrides})


def test_record_data_run_logs_params_metrics_samples_and_reports(
    mlflow_store, mlflow_client, market_db_url, reports, tmp_path
):
    run_id = _record(market_db_url, reports)
    run = mlflow_client.get_run(run_id)
    assert mlflow_client.get_experiment(run.info.experiment_id).name == "ibkr-stock-data"
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "market_data_models__asset_triggered__2025-01-03"
    assert run.data.params == {"symbols": "TSLA,NVDA", "session_start": "2023-01-03", "session_end": "2025-01-03",
                               "debug_mode": "False", "validation_status": "passed"}  # fmt: skip
    assert run.data.metrics == {"rows/raw": 1008, "rows/staging": 1008, "rows/marts": 2, "symbols_processed": 2,
                                "checks_passed": 11, "checks_failed": 0}  # fmt: skip
    assert run.data.tags["validation_status"] == "passed"
    assert _artifacts(mlflow_client, run_id) == {
        "samples/fct_latest_features.csv", "samples/fct_daily_indicators.csv",
        "validation/data_docs/index.html", "validation/validation_summary.json",
    }  # fmt: skip
    sql_sample = _text(mlflow_client, run_id, "samples/fct_daily_indicators.csv", tmp_path).splitlines()
    assert sql_sample[:3] == ["n,doubled", "1,2", "2,4"] and len(sql_sample) == 51
    assert _text(mlflow_client, run_id, "samples/fct_latest_features.csv", tmp_path) == (
        "symbol,close\nTSLA,410.5\nNVDA,138.2\n"
    )


def test_retry_with_a_changed_outcome_resumes_the_same_run(mlflow_store, mlflow_client, market_db_url, reports):
    first = _record(market_db_url, reports, validation_status="failed", checks_passed=10, checks_failed=1,
                    outcome="failed", samples={})  # fmt: skip
    assert mlflow_client.get_run(first).info.status == "FAILED"
    second = _record(market_db_url, reports, try_number=2, samples={})
    run = mlflow_client.get_run(second)
    assert second == first and run.info.status == "FINISHED"
    assert run.data.params["validation_status"] == "failed"  # params are write-once in MLflow
    assert run.data.tags["param.validation_status"] == run.data.tags["validation_status"] == "passed"
    assert run.data.metrics["checks_failed"] == 0 and run.data.tags["try_number"] == "2"


def test_logs_into_the_run_the_dag_started(mlflow_store, mlflow_client, market_db_url, reports):
    started = start_run("ibkr-stock-data", dag_id="market_data_models", run_id="manual__1")
    assert _record(market_db_url, reports, run_id="manual__1", mlflow_run_id=started, samples={}) == started
    assert len(mlflow_client.search_runs([mlflow_client.get_run(started).info.experiment_id])) == 1


def test_missing_report_fails_before_anything_is_logged(mlflow_store, mlflow_client, market_db_url, tmp_path):
    with pytest.raises(FileNotFoundError, match="not_there"):
        _record(market_db_url, [tmp_path / "not_there"], experiment="never-created")
    assert mlflow_client.get_experiment_by_name("never-created") is None


def test_debug_artifacts_only_when_debug_mode_is_on(mlflow_store, mlflow_client, market_db_url, reports, monkeypatch):
    quiet = _record(market_db_url, reports, run_id="r_quiet")
    assert not any(p.startswith("debug/") for p in _artifacts(mlflow_client, quiet))

    monkeypatch.setenv("DEBUG_MODE", "true")
    loud = _record(market_db_url, reports, run_id="r_debug")
    debug = {p for p in _artifacts(mlflow_client, loud) if p.startswith("debug/")}
    # SQL text + first rows for each SQL step, and the context; DataFrame samples need no query.
    assert debug == {"debug/context.json", "debug/fct_daily_indicators/query.sql",
                     "debug/fct_daily_indicators/sample.csv"}  # fmt: skip
    assert mlflow_client.get_run(loud).data.params["debug_mode"] == "True"


def test_debug_context_masks_secrets(mlflow_store, mlflow_client, monkeypatch, tmp_path):
    monkeypatch.setenv("DEBUG_MODE", "true")
    monkeypatch.setenv("MARKET_DB_URL", "postgresql://trader:hunter2@db:5432/market")
    monkeypatch.setenv("IBKR_API_TOKEN", "s3cr3t-token")
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "jwt-signing-secret")
    monkeypatch.setenv("AIRFLOW_CONN_BROKER", json.dumps({"conn_type": "http", "host": "gw", "password": "conn-pw"}))
    logger = RunLogger(start_run("it-debug", dag_id="d", run_id="r"))
    assert log_debug_context(logger, {"db": "postgresql://u:hunter2@h/db", "api_key": "s3cr3t-token", "n": 3})
    text = _text(mlflow_client, logger.run_id, "debug/context.json", tmp_path)
    assert not [s for s in SECRETS if s in text]
    context = json.loads(text)
    assert context["env"]["MARKET_DB_URL"] == "postgresql://trader:***@db:5432/market"
    assert context["env"]["IBKR_API_TOKEN"] == context["env"]["AIRFLOW__API_AUTH__JWT_SECRET"] == "***"
    assert json.loads(context["env"]["AIRFLOW_CONN_BROKER"])["password"] == "***"
    assert context["params"] == {"db": "postgresql://u:***@h/db", "api_key": "***", "n": 3}
    assert context["packages"]["mlflow"] == "3.17.2" and context["python"].startswith("3.11")
    assert "PATH" not in context["env"]  # only the project's own variables are recorded


def test_debug_mode_is_parsed_strictly(monkeypatch):
    monkeypatch.delenv("DEBUG_MODE", raising=False)
    assert debug_mode() is False  # off unless asked for
    monkeypatch.setenv("DEBUG_MODE", "false")
    assert debug_mode() is False
    monkeypatch.setenv("DEBUG_MODE", "sometimes")
    with pytest.raises(SettingsError, match="DEBUG_MODE"):
        debug_mode()
