"""The "MLflow run" extra link: loads as an Airflow plugin without mlflow, and resolves a real DAG run's XCom."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from include.tracking import run_url, ui_url

REPO = Path(__file__).resolve().parents[2]
LINK = "MLflow run"
RUN_ID = "0123456789abcdef0123456789abcdef"


def test_ui_url_prefers_explicit_setting_then_a_tracking_server_then_local():
    assert ui_url({"MLFLOW_UI_URL": "https://mlflow.example/", "MLFLOW_TRACKING_URI": "http://mlflow:5000"}) == (
        "https://mlflow.example"
    )
    assert ui_url({"MLFLOW_TRACKING_URI": "http://127.0.0.1:5500"}) == "http://127.0.0.1:5500"
    assert ui_url({"MLFLOW_TRACKING_URI": "sqlite:////x/mlflow.db"}) == "http://localhost:5500"
    env = {"MLFLOW_UI_URL": "http://ui:5500"}
    assert run_url(RUN_ID, environ=env) == f"http://ui:5500/#/runs/{RUN_ID}"
    assert run_url(RUN_ID, "7", environ=env) == f"http://ui:5500/#/experiments/7/runs/{RUN_ID}"
    assert run_url(None, environ=env) is None
    assert run_url("x/../../evil?", environ=env) is None  # never paste arbitrary XCom text into a URL


def test_plugin_loads_in_airflow_plugins_without_importing_mlflow(airflow_db):
    out = subprocess.run([str(Path(sys.executable).with_name("airflow")), "plugins", "--output", "json"],
                         cwd=REPO, capture_output=True, text=True, timeout=180, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip  # as make up / Astro set it
    plugins = {p["name"]: p for p in json.loads(out.stdout[out.stdout.index("[") :])}
    assert plugins["mlflow_link"]["global_operator_extra_links"] == ["<mlflow_link_plugin.MlflowRunLink object>"]
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('p', {str(REPO / 'plugins' / 'mlflow_link_plugin.py')!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(sorted(m for m in ('mlflow', 'pandas', 'psycopg2') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip().splitlines()[-1] == "[]"


# dag.test() runs DAGs a bundle knows: this file is parsed into the metadata DB like any DAG file.
DAG_FILE = f"""
from airflow.sdk import dag, task

def make(push):
    @dag(dag_id=f"mlflow_link_{{push}}", schedule=None, catchup=False)
    def link_dag():
        @task(task_id="start_mlflow_run")
        def start(**context):
            if push == "key":
                context["ti"].xcom_push(key="mlflow_run_id", value="{RUN_ID}")
                return None
            if push == "dict":  # a run description, as train_signal_model returns (one XCom, not one per key)
                return {{"mlflow_run_id": "{RUN_ID}", "model_name": "m"}}
            return "{RUN_ID}" if push == "return" else None

        @task
        def work() -> int:
            return 1

        start() >> work()

    return link_dag()


for push in ("return", "dict", "key", "none"):
    make(push)
"""


@pytest.fixture(scope="module")
def link_dags(airflow_db, tmp_path_factory):
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    folder = tmp_path_factory.mktemp("link_dags")
    (folder / "mlflow_link_dags.py").write_text(DAG_FILE)
    bag = DagBag(dag_folder=str(folder))
    assert not bag.import_errors, bag.import_errors
    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(bag, "dags-folder", None)
    return bag


@pytest.mark.airflow
@pytest.mark.parametrize("push", ["return", "dict", "key", "none"])
def test_link_resolves_the_dag_runs_mlflow_run_from_xcom(link_dags, monkeypatch, push):
    from airflow import plugins_manager
    from airflow.models.serialized_dag import SerializedDagModel

    monkeypatch.setenv("MLFLOW_UI_URL", "http://127.0.0.1:5500")
    dag_id = f"mlflow_link_{push}"
    dag_run = link_dags.dags[dag_id].test()
    assert str(getattr(dag_run.state, "value", dag_run.state)) == "success"
    # What the API server does for GET .../taskInstances/work/links: the serialized task + the TaskInstance.
    serialized_task = SerializedDagModel.get_dag(dag_id).get_task("work")
    assert LINK in serialized_task.extra_links
    assert LINK in {link.name for link in plugins_manager.get_global_operator_extra_links()}
    url = serialized_task.get_extra_links(dag_run.get_task_instance("work"), LINK)
    assert url == ("" if push == "none" else f"http://127.0.0.1:5500/#/runs/{RUN_ID}")

