"""The UIs of ``make up`` in a real browser (Playwright + Debian's Chromium), as ``make screenshots`` sees them.

One run of ``python -m scripts.screenshots`` against a stack of its own (state directory, embedded PostgreSQL,
simulator, Airflow, MLflow and Airflow's log-server ports all distinct from a developer's ``make up``): it runs
``make demo``'s pipeline on the fresh state, starts ``make up``, logs into Airflow through its login form,
opens the ``market_data_models`` run's graph and grid and the strategy's MLflow run and chart, triggers
``ibkr_trading_strategy`` through its trigger form with the workflow guide's conf (``TRADING_CLOCK`` inside an open
session), waits for that run, then stops ``make up`` with SIGINT. The tests assert on what the pages showed, on
the PNGs and on the triggered run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from scripts.devstack import free_ports
from scripts.screenshots import order_endpoint_requests

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "market_data_models"
GROUP_ID = "dbt_market"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SCREENSHOTS = ("airflow-dags.png", "airflow-dbt-task-group-graph.png", "airflow-run-grid.png",
               "mlflow-strategy-run.png", "mlflow-strategy-chart.png")  # fmt: skip
GUIDE_CONF = {"strategy_id": 1, "symbols": ["AAPL", "GOOGL", "MSFT"], "dry_run": True}  # the workflow guide's
# Friday 2026-12-04 10:30 New York: the market is open and the session before it has bars in the simulator.
CLOCK = "2026-12-04T15:30:00+00:00"
# demo on a fresh state + make up's first start + the browser + the form's run (~1 min), on a busy 2-core machine
RUN_TIMEOUT = 720

pytestmark = [pytest.mark.slow, pytest.mark.timeout(RUN_TIMEOUT + 60)]


def _chromium_or_skip() -> None:
    from scripts.screenshots import chromium_path

    if chromium_path():
        return
    install = subprocess.run(["sh", str(REPO / "scripts" / "install_browser.sh")], capture_output=True, text=True)
    if install.returncode != 0 or chromium_path() is None:
        pytest.skip(f"Chromium is not installed and cannot be installed here: {install.stderr.strip()[-500:]}")




def _isolated_env(local: Path) -> dict[str, str]:
    """The shell's environment without the test session's Airflow/market settings, on ports of its own."""
    dropped = ("MARKET_DB_URL", "IBKR_GATEWAY_URL", "MLFLOW_TRACKING_URI", "TEST_PG_ADMIN_URL")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "_TESTS_")) and k not in dropped}  # fmt: skip
    pg, sim, airflow, mlflow, worker_logs, trigger_logs = free_ports(6)
    env.update({
        "LOCAL_STACK_DIR": str(local), "EMBEDDED_PG_PORT": str(pg), "SIMULATOR_PORT": str(sim),
        "AIRFLOW_PORT": str(airflow), "MLFLOW_PORT": str(mlflow),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(worker_logs),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(trigger_logs), "TRADING_CLOCK": CLOCK,
    })  # fmt: skip
    return env


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> dict:
    _chromium_or_skip()
    out = tmp_path_factory.mktemp("screenshots")
    local = Path(tempfile.mkdtemp(prefix="ui-", dir="/tmp"))  # short: PostgreSQL's socket path is limited
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "scripts.screenshots", "--out", str(out), "--report", str(out / "report.json"),
         "--trigger-conf", json.dumps(GUIDE_CONF)],
        cwd=REPO, env=_isolated_env(local), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        errors="replace",
    )  # fmt: skip
    try:
        output, _ = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # the script's KeyboardInterrupt stops make up on its way out
        output, _ = proc.communicate(timeout=180)
        pytest.fail(f"make screenshots took over {RUN_TIMEOUT} s:\n{output[-6000:]}")
    finally:
        shutil.rmtree(local, ignore_errors=True)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, output[-8000:]
    assert "make up stopped (exit code 0)" in output  # SIGINT shut the whole stack down cleanly
    report = json.loads((out / "report.json").read_text())
    print(f"\nmake screenshots on a fresh stack: {elapsed:.0f} s")
    return {**report, "out": out}


@pytest.fixture(scope="module")
def dbt_group_tasks() -> list[str]:
    """The Cosmos group's task labels as the DAG renders them here (one per dbt model, plus test tasks)."""
    from airflow.dag_processing.dagbag import DagBag

    from include.dbt_project import ensure_manifest

    ensure_manifest()
    bag = DagBag(dag_folder=str(REPO / "dags" / f"{DAG_ID}.py"))
    group = bag.dags[DAG_ID].task_group_dict[GROUP_ID]
    return sorted(task_id.split(".", 1)[1] for task_id in group.children)


def test_login_through_the_form(ui: dict) -> None:
    assert ui["login_form_after_login"] is False
    assert "/auth/login" not in ui["url_after_login"]


def test_graph_shows_the_expanded_dbt_group(ui: dict, dbt_group_tasks: list[str]) -> None:
    nodes = ui["graph_nodes"]
    assert any(node.startswith(GROUP_ID) and "Task Group" in node for node in nodes), nodes
    models = [t for t in dbt_group_tasks if t.endswith("_model_build")]
    assert len(models) >= 5, dbt_group_tasks  # staging x2, intermediate, two marts
    labels = {node.splitlines()[0].strip() for node in nodes if node.strip()}  # the join point has no label
    assert set(dbt_group_tasks) <= labels, sorted(set(dbt_group_tasks) - labels)


def _task_states(table_text: str) -> dict[str, str]:
    """Task id -> state from the run page's task-instance table (each id's row continues with its state)."""
    lines = [line.strip() for line in table_text.splitlines() if line.strip() and line.strip() != "/"]
    return {line: lines[i + 1].split()[0] for i, line in enumerate(lines[:-1])
            if line.startswith(f"{GROUP_ID}.") or line in ("resolve_scope", "check_quality", "publish")}  # fmt: skip


def test_run_is_green(ui: dict, dbt_group_tasks: list[str]) -> None:
    assert ui["run_id"] in ui["run_heading"]
    assert "Success" in ui["run_heading"], ui["run_heading"]  # the run's state badge
    states = _task_states(ui["task_table"])
    assert {f"{GROUP_ID}.{task}" for task in dbt_group_tasks} <= set(states), states
    assert set(states.values()) == {"Success"}, states


def test_mlflow_strategy_run_with_its_chart(ui: dict) -> None:
    assert ui["mlflow_experiment"].startswith("ibkr-strategy-")
    assert ui["mlflow_run_name"].startswith("ibkr_trading_strategy__")
    assert ui["mlflow_run_name"] in ui["mlflow_run_page_text"]
    assert "Finished" in ui["mlflow_run_page_text"]
    assert ui["chart_artifact"].startswith("charts/") and ui["chart_artifact"].endswith(".png")
    width, height = ui["chart_natural_size"]
    assert width > 300 and height > 300  # the decoded PNG, shown by MLflow's artifact viewer


def test_screenshots_are_pngs_under_500_kb(ui: dict) -> None:
    for name in SCREENSHOTS:
        data = (ui["out"] / name).read_bytes()
        assert data[:8] == PNG_MAGIC, name
        assert 10_000 < len(data) < 500_000, (name, len(data))


def test_guide_conf_from_the_trigger_form_runs_to_success(ui: dict) -> None:
    """The guide's conf, entered in the trigger form's "Configuration JSON" editor, as the form sent it: the run
    succeeds, analyses the three symbols on real features and calls no order endpoint."""
    trigger = ui["trigger"]
    assert trigger["request_conf"] == GUIDE_CONF
    assert trigger["state"] == "success" and set(trigger["tasks"].values()) == {"success"}, trigger
    assert trigger["features_latest"] == GUIDE_CONF["symbols"] and not trigger["features_missing"], trigger
    requests = trigger["simulator_requests"]
    assert requests.get("/iserver/marketdata/snapshot") and not order_endpoint_requests(requests), requests
