"""``ibkr_trading_strategy`` end to end with ``dag.test()``: ingestion -> dbt -> GX -> signals -> risk ->
orders (dry_run and paper against the simulator) -> MLflow."""

import json
from datetime import timedelta
from pathlib import Path

import httpx
import psycopg2
import pytest

from tests.conftest import rendered_task_ids
from tests.dags.bars import steady_decline

pytestmark = pytest.mark.airflow
DAG_ID = "ibkr_trading_strategy"

# RSI mean reversion on bars rewritten below into a steady decline (RSI 0): a BUY with confidence 1.
STRATEGY = """
version: 1
strategies:
  - id: 7
    name: oversold_test
    symbols: [TSLA, NVDA]
    schedule: "@daily"
    signal: {model: rsi_mean_reversion, oversold: 30, overbought: 70, full_confidence_distance: 15}
    risk: {max_order_notional: 2000, max_position_notional: 5000, price_collar_pct: 0.2}  # bars rewritten below
    mode: paper
  - id: 8
    name: llm_test
    symbols: [TSLA, NVDA]
    schedule: "@daily"
    signal: {model: llm, prompt: signal_v1, connection_id: llm_default, timeout_seconds: 10, max_retries: 1}
    risk: {max_order_notional: 2000, max_position_notional: 5000, price_collar_pct: 0.2}
    mode: dry_run
"""


def _rows(dsn, sql, args=()):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else None


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("trading-strategy")


@pytest.fixture
def market(run_dag, stack_env, module_dir, monkeypatch, db_snapshot):
    """TSLA and NVDA bars as a steady decline; NVDA's last bar broken (high < low) -> a `fail` verdict. Built by
    ingestion, dbt and GX once for the module, then restored from a copy for each test."""
    file = Path(module_dir / "strategies.yaml")
    file.write_text(STRATEGY)
    monkeypatch.setenv("STRATEGIES_FILE", str(file))
    monkeypatch.setenv("QUALITY_REPORTS_DIR", str(module_dir / "quality"))
    dsn = stack_env["MARKET_DB_URL"]

    def build():
        # 220 sessions: past SMA-200's warm-up, which would otherwise make the verdict `warn` (exits only)
        state, tasks = run_dag("ibkr_ingest_daily_bars", {"symbols": ["TSLA", "NVDA"],
                                                         "initial_history_sessions": 220})
        assert state == "success", tasks
        steady_decline(dsn)
        _rows(dsn, """UPDATE raw.daily_bars SET high = low - 1
                      WHERE symbol = 'NVDA' AND session_date = (SELECT max(session_date) FROM raw.daily_bars)""")
        state, tasks = run_dag("market_data_models", {"sessions": 40})
        verdicts = dict(_rows(dsn, "SELECT symbol, verdict FROM quality.symbol_verdicts"))
        assert verdicts == {"TSLA": "pass", "NVDA": "fail"}, (state, tasks)

    db_snapshot("trading-strategy:declining TSLA, broken NVDA", build)
    return dsn


def _mlflow_run(strategy="oversold_test", experiment_name="ibkr-strategy-{strategy}"):
    from include.tracking import client

    mlflow = client()
    experiment = mlflow.get_experiment_by_name(experiment_name.replace("{strategy}", strategy))
    runs = mlflow.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
    return mlflow, runs[0]


def test_dry_run_records_simulated_intents_and_vetoes_bad_data(run_dag, market, simulator):
    before = httpx.get(f"{simulator.admin_url}/orders").json()["orders"]
    state, tasks = run_dag(DAG_ID, {"strategy_id": 7, "symbols": ["TSLA", "NVDA"], "dry_run": True,
                                    "ignore_market_hours": True})
    assert state == "success", tasks
    intents = _rows(market, "SELECT symbol, side, status, quantity, mlflow_run_id, run_id, dag_id, cOID"
                            " FROM trading.order_intents")
    assert [(s, side, st) for s, side, st, *_ in intents] == [("TSLA", "BUY", "simulated")]
    _, _, _, quantity, mlflow_run_id, run_id, dag_id, coid = intents[0]
    assert quantity >= 1 and dag_id == DAG_ID and coid
    assert httpx.get(f"{simulator.admin_url}/orders").json()["orders"] == before  # dry run: no order sent

    mlflow, run = _mlflow_run()
    assert run.info.run_id == mlflow_run_id and run.info.status == "FINISHED"
    assert run.data.params["mode"] == "dry_run" and run.data.params["symbols"] == "TSLA,NVDA"
    assert run.data.tags["run_id"] == run_id and run.data.tags["dag_id"] == DAG_ID
    assert run.data.metrics["signal_confidence.TSLA"] == 1.0 and run.data.metrics["vetoes"] == 1
    for key in ("fetch_duration_seconds", "data_points", "order_quantity", "order_value", "mlflow_share"):
        assert key in run.data.metrics, key
    artifacts = {a.path for a in mlflow.list_artifacts(run.info.run_id)}
    assert {"signals", "risk", "orders", "charts", "data_quality"} <= artifacts
    charts = {a.path for a in mlflow.list_artifacts(run.info.run_id, "charts")}
    assert charts == {"charts/TSLA.png", "charts/NVDA.png"}
    report = json.loads(Path(mlflow.download_artifacts(run.info.run_id, "risk/risk_report.json")).read_text())
    nvda = next(d for d in report["decisions"] if d["symbol"] == "NVDA")
    assert nvda["status"] == "vetoed" and any("high" in v["reason"] and "< low" in v["reason"]
                                              for v in nvda["vetoes"]), nvda["vetoes"]

    # the steps get earlier steps' outputs as arguments (issue #14, P8): pulled from XCom, not stored again as the
    # tasks' rendered fields (the market-hours sensor's template still is)
    rendered = rendered_task_ids(DAG_ID, run_id)
    assert "market_open" in rendered and not rendered & {"generate_signals", "assess_risk", "place_orders",
                                                         "render_charts", "read_features"}, rendered


def test_charts_render_after_the_orders_and_a_chart_failure_is_loud_without_undoing_them(run_dag, market,
                                                                                        monkeypatch):
    from include.trading.charts import ChartRenderer
    from include.trading.workflow import build_trading_dag, trading_params

    dag = build_trading_dag("shape_check", schedule=None, params=trading_params(), doc_md="")
    assert {"place_orders", "generate_signals"} <= dag.get_task("render_charts").upstream_task_ids

    def broken(self, symbol, rows, signal, path):
        raise RuntimeError(f"chart of {symbol}: disk full")

    monkeypatch.setattr(ChartRenderer, "render", broken)
    state, tasks = run_dag(DAG_ID, {"strategy_id": 7, "symbols": ["TSLA", "NVDA"], "dry_run": True,
                                    "ignore_market_hours": True})
    # place_orders decides the run (the decision stands); the chart task fails, alerts and fails the MLflow run
    assert state == "success" and tasks["place_orders"] == "success" and tasks["render_charts"] == "failed", tasks
    assert _rows(market, "SELECT symbol, status FROM trading.order_intents") == [("TSLA", "simulated")]
    _, run = _mlflow_run()
    assert run.info.status == "FAILED" and "render_charts" in run.data.tags.get("failed_tasks", ""), run.data.tags
    alerts = _rows(market, "SELECT summary FROM ops.alerts WHERE event = 'task_failure'")
    assert any("render_charts" in summary for (summary,) in alerts), alerts


def open_market_clock(dsn, simulator, monkeypatch):
    """TRADING_CLOCK (and the simulator's clock) one hour into the session after the last bar: the market is open,
    the bars' last session is the last completed one, and quotes are fresh."""
    from include.marketdata.calendar import MarketCalendar

    ((last,),) = _rows(dsn, "SELECT max(session_date) FROM raw.daily_bars")
    calendar = MarketCalendar()
    at = calendar.session(calendar.next_session(last)).open + timedelta(hours=1)
    monkeypatch.setenv("TRADING_CLOCK", at.isoformat())
    httpx.post(f"{simulator.admin_url}/clock", json={"now": at.isoformat(), "running": True}).raise_for_status()
    return at


def test_paper_run_submits_once_however_often_the_session_is_traded(run_dag, market, simulator, monkeypatch):
    open_market_clock(market, simulator, monkeypatch)
    conf = {"strategy_id": 7, "symbols": ["TSLA", "NVDA"], "dry_run": False, "mode": "paper",
            "ignore_market_hours": False}  # explicit: dag.test() keeps the params of an earlier run
    state, tasks = run_dag(DAG_ID, conf)
    assert state == "success", tasks
    (intent_id, status, broker_id), = _rows(
        market, "SELECT intent_id, status, broker_order_id FROM trading.order_intents")
    assert status in ("acknowledged", "filled") and broker_id
    book = [o for o in httpx.get(f"{simulator.admin_url}/orders").json()["orders"] if o.get("cOID") == intent_id]
    assert len(book) == 1

    # A second trigger of the same session, and the order step again for the first run (a retry or a clear):
    # the decision is found, nothing new is sent.
    state, tasks = run_dag(DAG_ID, conf)
    assert state == "success", tasks
    from include.trading import tasks as trading
    from include.trading.context import RiskOutcome

    class _TI:
        try_number = 2

        def xcom_push(self, **_):
            pass

    mlflow, run = _mlflow_run()
    risk = json.loads(Path(mlflow.download_artifacts(run.info.run_id, "risk/risk_report.json")).read_text())
    first = _rows(market, "SELECT dag_id, run_id FROM trading.order_intents")[0]
    outcome = RiskOutcome.model_validate({"run": _trading_run(run, first), "decisions": risk["decisions"],
                                          "signals": {}, "verdicts": {}})
    again = trading.place_orders(outcome, {"ti": _TI()})
    assert [i["intent_id"] for i in again.intents] == [intent_id]
    book = [o for o in httpx.get(f"{simulator.admin_url}/orders").json()["orders"] if o.get("cOID") == intent_id]
    assert len(book) == 1
    assert len(_rows(market, "SELECT 1 FROM trading.order_intents")) == 1


def _trading_run(mlflow_run, first):
    p = mlflow_run.data.params
    return {"dag_id": first[0], "run_id": first[1], "strategy_id": int(p["strategy_id"]), "strategy": p["strategy"],
            "mode": p["mode"], "symbols": p["symbols"].split(","), "mlflow_run_id": mlflow_run.info.run_id,
            "started_at": "2026-01-01T00:00:00+00:00", "session": p["session"], "data_session": p["data_session"]}


def test_paper_refuses_ignore_market_hours(run_dag, stack_env, capfd):
    state, tasks = run_dag(DAG_ID, {"strategy_id": 1, "dry_run": False, "mode": "paper",
                                    "ignore_market_hours": True})
    assert state == "failed" and tasks["start_mlflow_run"] == "failed"
    out = capfd.readouterr()
    assert "ignore_market_hours is for dry runs only" in out.out + out.err


def test_bad_conf_fails_fast_with_a_clear_message(run_dag, stack_env, capfd):
    state, tasks = run_dag(DAG_ID, {"strategy_id": 999, "dry_run": True, "ignore_market_hours": True})
    assert state == "failed" and tasks["start_mlflow_run"] == "failed"
    assert tasks["place_orders"] == "upstream_failed"
    out = capfd.readouterr()
    assert "strategy_id 999" in out.out + out.err


def test_a_failed_environment_check_stops_the_run_beside_a_healthy_gateway(run_dag, market, simulator,
                                                                           monkeypatch, tmp_path):
    """validate_environment runs beside the gateway gate: when it fails (here: the LLM connection is missing) the gate
    may pass, but nothing downstream reads data or decides; the failure is the run's, and its MLflow run's."""
    from include.config.workflow import WORKFLOW_FILE_ENV, WORKFLOW_YAML

    workflow = WORKFLOW_YAML.read_text().replace('experiment_name: "ibkr-strategy-{strategy}"',
                                                 'experiment_name: "env-check-{strategy}"')
    (tmp_path / "workflow.yaml").write_text(workflow)
    monkeypatch.setenv(WORKFLOW_FILE_ENV, str(tmp_path / "workflow.yaml"))  # the LLM test expects no default one
    monkeypatch.delenv("AIRFLOW_CONN_LLM_DEFAULT", raising=False)
    before = httpx.get(f"{simulator.admin_url}/orders").json()["orders"]
    state, tasks = run_dag(DAG_ID, {"strategy_id": 8, "dry_run": True, "ignore_market_hours": True})
    assert state == "failed" and tasks["validate_environment"] == "failed", tasks
    assert tasks["ibkr_auth"] == "success" and tasks["market_open"] == "success", tasks
    for step in ("fetch_market_data", "backfill_symbols", "read_features", "generate_signals", "assess_risk",
                 "place_orders"):
        assert tasks[step] == "upstream_failed", (step, tasks)
    ((intents_table,),) = _rows(market, "SELECT to_regclass('trading.order_intents') IS NOT NULL")
    if intents_table:
        assert _rows(market, "SELECT count(*) FROM trading.order_intents") == [(0,)]
    assert httpx.get(f"{simulator.admin_url}/orders").json()["orders"] == before
    _, run = _mlflow_run("llm_test", "env-check-{strategy}")
    assert run.info.status == "FAILED" and "validate_environment" in run.data.tags["failed_tasks"], run.data.tags


def test_llm_strategy_through_an_openai_compatible_endpoint(run_dag, market, monkeypatch, tmp_path):
    """The LLM strategy against the local OpenAI-compatible stub (connection llm_default): its answer becomes the
    signal, prompt and response land in MLflow, and a malformed answer is a HOLD with the reason, never an order.
    The run and its LLM traces go to the experiment workflow.yaml names (here one of the team's own)."""
    from include.config.workflow import WORKFLOW_FILE_ENV, WORKFLOW_YAML
    from include.tracking import client as mlflow_client
    from sim.llm_stub import StubServer

    workflow = WORKFLOW_YAML.read_text()
    assert 'experiment_name: "ibkr-strategy-{strategy}"' in workflow
    (tmp_path / "workflow.yaml").write_text(workflow.replace('experiment_name: "ibkr-strategy-{strategy}"',
                                                             'experiment_name: "team-{strategy}"'))
    monkeypatch.setenv(WORKFLOW_FILE_ENV, str(tmp_path / "workflow.yaml"))
    with StubServer() as stub:
        monkeypatch.setenv("AIRFLOW_CONN_LLM_DEFAULT", json.dumps(
            {"conn_type": "http", "host": stub.base_url, "extra": {"model": "stub-signal-1"}}))
        state, tasks = run_dag(DAG_ID, {"strategy_id": 8, "dry_run": True, "ignore_market_hours": True})
        assert state == "success", tasks
        assert _rows(market, "SELECT symbol, side, status FROM trading.order_intents") == [("TSLA", "BUY", "simulated")]
        assert mlflow_client().get_experiment_by_name("ibkr-strategy-llm_test") is None
        mlflow, run = _mlflow_run("llm_test", "team-{strategy}")
        assert run.data.params["prompt_version"] == "signal_v1"
        trace = json.loads(Path(mlflow.download_artifacts(run.info.run_id, "llm/TSLA.json")).read_text())
        assert trace["model"] == "stub-signal-1" and "BUY" in trace["raw_response"]
        traces = mlflow.search_traces(locations=[run.info.experiment_id], run_id=run.info.run_id)
        assert traces and {t.info.tags["airflow.dag_id"] for t in traces} == {DAG_ID}  # linked to the run found

        httpx.post(f"{stub.admin_url}/faults", json={"mode": "invalid_json", "times": 10})
        state, tasks = run_dag(DAG_ID, {"strategy_id": 8, "dry_run": True, "ignore_market_hours": True})
        assert state == "success", tasks
        mlflow, run = _mlflow_run("llm_test", "team-{strategy}")
        signals = json.loads(Path(mlflow.download_artifacts(run.info.run_id, "signals/signals.json")).read_text())
        assert {s["action"] for s in signals} == {"HOLD"} and all(s["rationale"] for s in signals)
        assert run.data.metrics["orders"] == 0


def test_symbols_without_data_are_fetched_built_and_checked_on_demand(run_dag, market, simulator):
    """AAPL was never ingested: the run fetches its history, builds its features (dbt) and checks them (GX) before
    read_features; MSFT has no data at the gateway and ZZZZQ is no ticker at all: the others are quoted and trade,
    then the run fails naming both."""
    httpx.post(f"{simulator.admin_url}/bars", json={"symbol": "MSFT", "no_data": True}).raise_for_status()
    state, tasks = run_dag(DAG_ID, {"strategy_id": 7, "symbols": ["TSLA", "AAPL", "MSFT", "ZZZZQ"], "dry_run": True,
                                    "ignore_market_hours": True})
    assert tasks["fetch_market_data"] == "success"  # the unknown ticker is left out of the snapshot, not fatal
    assert tasks["backfill_symbols"] == "success" and tasks["read_features"] == "success"
    assert state == "failed" and tasks["place_orders"] == "failed"
    ((last,),) = _rows(market, "SELECT max(session_date) FROM raw.daily_bars WHERE symbol = 'TSLA'")
    assert _rows(market, "SELECT symbol, session_date FROM analytics_marts.fct_latest_features"
                         " WHERE symbol IN ('AAPL', 'MSFT')") == [("AAPL", last)]
    assert _rows(market, "SELECT verdict FROM quality.symbol_verdicts WHERE symbol = 'AAPL' AND range_end = %s",
                 (last,)) == [("pass",)]
    mlflow, run = _mlflow_run()
    report = json.loads(Path(mlflow.download_artifacts(run.info.run_id, "data_quality/on_demand.json")).read_text())
    assert set(report["needed"]) == {"AAPL", "MSFT", "ZZZZQ"} and report["loaded"] == ["AAPL"]
    assert sorted(report["unavailable"]) == ["MSFT", "ZZZZQ"] and "NoDataError" in report["unavailable"]["MSFT"]
    verdicts = json.loads(Path(mlflow.download_artifacts(run.info.run_id, "data_quality/verdicts.json")).read_text())
    assert verdicts["missing"] == ["MSFT", "ZZZZQ"]  # place_orders failed the run naming them, after TSLA and AAPL
    assert _rows(market, "SELECT count(*) FROM trading.order_intents WHERE symbol IN ('MSFT', 'ZZZZQ')") == [(0,)]

