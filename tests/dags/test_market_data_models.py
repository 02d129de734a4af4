"""``market_data_models`` (Cosmos DbtTaskGroup) end to end with ``dag.test()`` after an ingestion run."""

import psycopg2
import pytest

pytestmark = pytest.mark.airflow


def _rows(dsn, sql):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_ingest_then_dbt_task_group_builds_the_marts(run_dag, stack_env, dagbag):
    dag = dagbag.dags["market_data_models"]
    assert "dbt_market" in dag.task_group.children  # the UI shows the dbt models as a task group
    assert run_dag("ibkr_ingest_daily_bars", {"symbols": ["TSLA", "NVDA"], "initial_history_sessions": 60})[0] \
        == "success"
    state, tasks = run_dag("market_data_models")
    assert state == "success", tasks
    assert tasks["dbt_market.fct_daily_indicators.run"] == "success"
    assert tasks["dbt_market.fct_daily_indicators.test"] == "success"
    dsn = stack_env["MARKET_DB_URL"]
    assert _rows(dsn, "SELECT symbol, count(*) FROM analytics_marts.fct_daily_indicators GROUP BY 1 ORDER BY 1") \
        == [("NVDA", 60), ("TSLA", 60)]
    assert _rows(dsn, "SELECT count(*) FROM analytics_marts.fct_latest_features") == [(2,)]


def test_failing_dbt_test_stops_everything_downstream(run_dag, stack_env):
    assert run_dag("ibkr_ingest_daily_bars", {"symbols": ["TSLA"], "initial_history_sessions": 30})[0] == "success"
    with psycopg2.connect(stack_env["MARKET_DB_URL"]) as conn, conn.cursor() as cur:
        cur.execute("UPDATE raw.daily_bars SET low = high + 1 WHERE session_date = "
                    "(SELECT max(session_date) FROM raw.daily_bars)")
    state, tasks = run_dag("market_data_models")
    assert state == "failed"
    assert tasks["dbt_market.stg_ibkr__daily_bars.test"] == "failed"
    assert tasks["dbt_market.fct_daily_indicators.run"] == "upstream_failed"
