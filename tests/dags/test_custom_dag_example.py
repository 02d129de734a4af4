"""The DAGs of docs/custom-dags.md, exactly as printed there, run with ``dag.test()`` against the simulator and
PostgreSQL in dry run: the guide's metrics land in MLflow and orders only in the ledger (simulated)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import httpx
import psycopg2
import pytest

pytestmark = pytest.mark.airflow
DOC = Path(__file__).resolve().parents[2] / "docs" / "custom-dags.md"
GUIDE_METRICS = ("symbols_count", "data_points", "fetch_duration_seconds", "signal_confidence", "order_quantity",
                 "order_value")  # fmt: skip


def example(name: str, folder: Path):
    """The python block of the docs page that starts with ``# dags/<name>.py``, imported as a DAG file."""
    blocks = re.findall(r"```python\n(# dags/(\w+)\.py\n.*?)```", DOC.read_text(), flags=re.S)
    source = next(code for code, stem in blocks if stem == name)
    path = folder / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("custom-dag-example")


@pytest.fixture
def three_symbols(run_dag, stack_env, module_dir, monkeypatch, db_snapshot):
    """AAPL, GOOGL and MSFT daily bars from the simulator through dbt and the quality gate (the examples' symbols),
    built once for the module and restored from a copy for each test."""
    monkeypatch.setenv("QUALITY_REPORTS_DIR", str(module_dir / "quality"))

    def build():
        state, tasks = run_dag("ibkr_ingest_daily_bars", {"symbols": ["AAPL", "GOOGL", "MSFT"],
                                                         "initial_history_sessions": 220})
        assert state == "success", tasks
        state, tasks = run_dag("market_data_models", {"sessions": 40})
        assert state == "success", tasks

    db_snapshot("custom-dag-example:AAPL GOOGL MSFT", build)
    return stack_env["MARKET_DB_URL"]


@pytest.fixture
def run_example(dagbag, run_dag, tmp_path, monkeypatch):
    """``run_dag`` for a DAG file in ``tmp_path``: dag.test() serializes DAGs from their bundle, so the folder is
    configured as a second local bundle beside the project's dags folder."""
    added = []
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([
        {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {}},
        {"name": "docs-examples", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
         "kwargs": {"path": str(tmp_path)}}]))

    def _run(dag, conf):
        dagbag.dags[dag.dag_id] = dag  # run_dag runs what the dagbag holds
        added.append(dag.dag_id)
        return run_dag(dag.dag_id, conf)

    yield _run
    for dag_id in added:
        dagbag.dags.pop(dag_id, None)


def _latest_run(experiment="ibkr-strategy-macd_momentum"):
    from include.tracking import client

    mlflow = client()
    ids = [mlflow.get_experiment_by_name(experiment).experiment_id]
    return mlflow.search_runs(ids, order_by=["attributes.start_time DESC"])[0]


def _intents(dsn, dag_id):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('trading.order_intents') IS NOT NULL")
        if not cur.fetchone()[0]:
            return []
        cur.execute("SELECT symbol, status, mode FROM trading.order_intents WHERE dag_id = %s", (dag_id,))
        return cur.fetchall()


def test_scheduling_a_strategy_example(three_symbols, run_example, simulator, tmp_path):
    dag = example("my_momentum_strategy", tmp_path).my_dag
    assert dag.dag_id == "my_momentum_strategy" and dag.description == "My momentum strategy"
    assert dag.timetable.expression == "0 9 * * 1-5" and str(dag.timezone.name) == "America/New_York"
    assert dag.params["strategy_id"] == 3 and dag.params["dry_run"] is True
    assert dag.default_args["owner"] == "trading"  # include/config/workflow.yaml
    before = httpx.get(f"{simulator.admin_url}/orders").json()["orders"]

    state, tasks = run_example(dag, {"ignore_market_hours": True})  # a dry run outside exchange hours
    assert state == "success", tasks
    run = _latest_run()
    assert run.info.status == "FINISHED" and run.data.tags["dag_id"] == "my_momentum_strategy"
    assert run.data.params["symbols"] == "AAPL,GOOGL,MSFT" and run.data.params["mode"] == "dry_run"
    assert all(key in run.data.metrics for key in GUIDE_METRICS), sorted(run.data.metrics)
    assert run.data.metrics["symbols_count"] == 3
    assert {status for _, status, _ in _intents(three_symbols, dag.dag_id)} <= {"simulated"}
    assert httpx.get(f"{simulator.admin_url}/orders").json()["orders"] == before  # no order sent


def test_composed_example(three_symbols, run_example, simulator, tmp_path):
    module = example("my_composed_strategy", tmp_path)
    dag = module.orders.dag
    assert dag.dag_id == "my_composed_strategy"
    assert [t.task_id for t in dag.tasks] == ["market_open", "ibkr_auth", "fetch_market_data", "generate_signals",
                                              "place_orders"]
    before = httpx.get(f"{simulator.admin_url}/orders").json()["orders"]

    state, tasks = run_example(dag, {"ignore_market_hours": True})
    assert state == "success", tasks
    run = _latest_run()
    assert run.data.tags["dag_id"] == "my_composed_strategy" and run.data.params["symbols"] == "AAPL,GOOGL,MSFT"
    assert all(key in run.data.metrics for key in GUIDE_METRICS), sorted(run.data.metrics)
    assert {status for _, status, _ in _intents(three_symbols, dag.dag_id)} <= {"simulated"}
    assert httpx.get(f"{simulator.admin_url}/orders").json()["orders"] == before
