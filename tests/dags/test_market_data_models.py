"""``market_data_models`` end to end with ``dag.test()`` after an ingestion run: Cosmos dbt task group, then the
Great Expectations gate writing one verdict per symbol."""

from types import SimpleNamespace

import psycopg2
import pytest

pytestmark = pytest.mark.airflow


def _rows(dsn, sql, params=None):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else None


def _verdicts(dsn):
    return {symbol: (verdict, reasons) for symbol, verdict, reasons in _rows(
        dsn, "SELECT symbol, verdict, reasons FROM quality.symbol_verdicts ORDER BY symbol")}


def test_ingest_then_dbt_then_quality_gate(run_dag, stack_env, dagbag, tmp_path, monkeypatch):
    monkeypatch.setenv("QUALITY_REPORTS_DIR", str(tmp_path))
    from openlineage.common.provider.dbt.local import DbtLocalArtifactProcessor

    lineage_parses = []  # no OpenLineage provider here: the dbt tasks skip Cosmos's lineage step
    monkeypatch.setattr(DbtLocalArtifactProcessor, "parse",  # counts, and returns no events
                        lambda self: lineage_parses.append(self) or SimpleNamespace(starts=[], completes=[], fails=[]))
    dag = dagbag.dags["market_data_models"]
    assert "dbt_market" in dag.task_group.children  # the UI shows the dbt models as a task group
    assert run_dag("ibkr_ingest_daily_bars", {"symbols": ["TSLA", "NVDA"], "initial_history_sessions": 210})[0] \
        == "success"
    state, tasks = run_dag("market_data_models")
    assert state == "success", tasks
    assert tasks["dbt_market.fct_daily_indicators_model_build"] == "success"  # dbt build: unit tests, model, tests
    assert lineage_parses == []
    assert (tasks["resolve_scope"], tasks["check_quality"], tasks["dbt_failed"]) == ("success", "success", "skipped")
    dsn = stack_env["MARKET_DB_URL"]
    assert _rows(dsn, "SELECT symbol, count(*) FROM analytics_marts.fct_daily_indicators GROUP BY 1 ORDER BY 1") \
        == [("NVDA", 210), ("TSLA", 210)]
    assert _rows(dsn, "SELECT count(*) FROM analytics_marts.fct_latest_features") == [(2,)]
    assert _verdicts(dsn) == {"NVDA": ("pass", []), "TSLA": ("pass", [])}
    (run_key,) = {r[0] for r in _rows(dsn, "SELECT run_key FROM quality.symbol_verdicts")}
    assert run_key.startswith("market_data_models/")
    reports = list(tmp_path.iterdir())
    assert len(reports) == 1 and (reports[0] / "data_docs" / "index.html").exists()
    assert (reports[0] / "gx_raw_daily_bars.json").exists() and (reports[0] / "gx_fct_daily_indicators.json").exists()
    assert (tasks["log_data_run"], tasks["publish"]) == ("success", "success")

    from include.tracking import client  # the data run in MLflow (experiment ibkr-stock-data)

    mlflow = client()
    experiment = mlflow.get_experiment_by_name("ibkr-stock-data")
    (run,) = mlflow.search_runs([experiment.experiment_id], filter_string=f"tags.run_id = '{run_key.split('/')[1]}'")
    assert run.info.status == "FINISHED" and run.data.params["validation_status"] == "pass"
    assert run.data.metrics["rows/fct_daily_indicators"] == 420 and run.data.metrics["checks_failed"] == 0
    artifacts = {a.path for a in mlflow.list_artifacts(run.info.run_id, "samples")}
    assert artifacts == {"samples/fct_daily_indicators.csv", "samples/fct_latest_features.csv"}
    assert any(a.path.endswith("data_docs") for a in mlflow.list_artifacts(run.info.run_id, "validation"))


def test_bad_bar_fails_its_symbol_and_the_run_goes_on(run_dag, stack_env, tmp_path, monkeypatch):
    """dbt's bar-sanity tests warn, so dbt builds every symbol and the GX verdict is what blocks TSLA."""
    monkeypatch.setenv("QUALITY_REPORTS_DIR", str(tmp_path))
    assert run_dag("ibkr_ingest_daily_bars", {"symbols": ["TSLA", "NVDA"], "initial_history_sessions": 30})[0] \
        == "success"
    dsn = stack_env["MARKET_DB_URL"]
    (day,) = _rows(dsn, "UPDATE raw.daily_bars SET low = high + 1 WHERE symbol = 'TSLA' AND session_date ="
                        " (SELECT max(session_date) FROM raw.daily_bars) RETURNING session_date")[0]
    state, tasks = run_dag("market_data_models", {"symbols": ["TSLA", "NVDA"], "sessions": 30})
    assert state == "success", tasks
    assert tasks["dbt_market.stg_ibkr__daily_bars_model_build"] == "success"  # its tests warned: the DAG goes on
    assert tasks["check_quality"] == "success"
    verdicts = _verdicts(dsn)
    assert verdicts["TSLA"][0] == "fail"
    assert any(r.startswith(f"TSLA {day.isoformat()}: high ") and "< low" in r for r in verdicts["TSLA"][1])
    assert verdicts["NVDA"][0] == "warn"  # only 30 sessions: indicators still warming up, not a failure
    assert all("warming up" in r for r in verdicts["NVDA"][1])
    assert _rows(dsn, "SELECT count(*) FROM raw.daily_bars") == [(60,)]


def test_gate_runs_after_a_dbt_failure_and_the_run_fails(run_dag, stack_env, tmp_path, monkeypatch):
    """A raw column renamed under dbt: every model fails, the gate still runs, finds nothing it can check,
    writes fail verdicts and fails; the run fails (dbt_failed) instead of reporting the gate's state."""
    monkeypatch.setenv("QUALITY_REPORTS_DIR", str(tmp_path))
    assert run_dag("ibkr_ingest_daily_bars", {"symbols": ["TSLA"], "initial_history_sessions": 30})[0] == "success"
    dsn = stack_env["MARKET_DB_URL"]
    _rows(dsn, "ALTER TABLE raw.daily_bars RENAME COLUMN volume TO volume_shares")
    try:
        state, tasks = run_dag("market_data_models")
    finally:
        _rows(dsn, "ALTER TABLE raw.daily_bars RENAME COLUMN volume_shares TO volume")
    assert state == "failed"
    assert tasks["dbt_market.stg_ibkr__daily_bars_model_build"] == "failed"
    assert tasks["dbt_market.fct_daily_indicators_model_build"] == "upstream_failed"
    assert (tasks["resolve_scope"], tasks["check_quality"], tasks["dbt_failed"]) == ("success", "failed", "failed")
    verdict, reasons = _verdicts(dsn)["TSLA"]
    assert verdict == "fail" and any("could not run" in r for r in reasons)
