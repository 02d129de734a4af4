"""The failure notifier end to end: a DAG whose task fails under ``dag.test()`` alerts the webhook receiver with the
dag, task, run, try, exception and log URL; every project DAG carries the notifier on every task."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.alerts.notifiers import TaskFailureNotifier
from include.alerts.store import recent_alerts

REPO = Path(__file__).resolve().parents[2]

# dag.test() runs DAGs a bundle knows: this file is parsed into the metadata DB like any DAG file.
DAG_FILE = """
from airflow.sdk import dag, task

from include.alerts.notifiers import failure_notifier


@dag(dag_id="alerts_failing", schedule=None, catchup=False,
     default_args={"retries": 0, "on_failure_callback": failure_notifier()})
def alerts_failing():
    @task
    def fine() -> int:
        return 1

    @task
    def explode(value: int) -> None:
        raise ValueError(f"boom {value + 41}")

    explode(fine())


alerts_failing()
"""


@pytest.fixture(scope="module")
def failing_dag(airflow_db, tmp_path_factory):
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    folder = tmp_path_factory.mktemp("alert_dags")
    (folder / "alerts_failing.py").write_text(DAG_FILE)
    bag = DagBag(dag_folder=str(folder))
    assert not bag.import_errors, bag.import_errors
    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(bag, "dags-folder", None)
    return bag.dags["alerts_failing"]


@pytest.mark.airflow
def test_failed_task_alerts_the_webhook_end_to_end(failing_dag, webhook_receiver, market_db_url, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_WEBHOOK", webhook_receiver.connection())
    monkeypatch.setenv("MARKET_DB_URL", market_db_url)
    dag_run = failing_dag.test()
    assert str(getattr(dag_run.state, "value", dag_run.state)) == "failed"
    [body] = webhook_receiver.bodies()  # the task that succeeded sends nothing
    assert body["event"] == "task_failure" and body["severity"] == "critical"
    assert body["dag_id"] == "alerts_failing" and body["run_id"] == dag_run.run_id
    details = body["details"]
    assert {k: details[k] for k in ("dag_id", "task_id", "run_id", "try_number", "exception")} == {
        "dag_id": "alerts_failing",
        "task_id": "explode",
        "run_id": dag_run.run_id,
        "try_number": 1,
        "exception": "ValueError: boom 42",
    }
    assert "/dags/alerts_failing/runs/" in details["log_url"] and "/tasks/explode" in details["log_url"]
    assert body["summary"] == f"task alerts_failing.explode failed (try 1) in run {dag_run.run_id}: ValueError: boom 42"
    for needle in ("alerts_failing", "explode", dag_run.run_id, "ValueError: boom 42", details["log_url"]):
        assert needle in body["text"]
    [row] = [r for r in recent_alerts(market_db_url, event="task_failure") if r["run_id"] == dag_run.run_id]
    assert row["channels"] == ["webhook"] and row["details"]["task_id"] == "explode"


@pytest.fixture(scope="module")
def project_dagbag():
    from airflow.dag_processing.dagbag import DagBag

    from include.dbt_project import ensure_manifest

    ensure_manifest()
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag


def test_every_task_of_every_dag_alerts_on_failure(project_dagbag):
    missing = []
    for dag in project_dagbag.dags.values():
        for task in dag.tasks:
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            if not any(isinstance(c, TaskFailureNotifier) for c in callbacks):
                missing.append(f"{dag.dag_id}.{task.task_id}")
    assert missing == []


def test_alert_notifier_renders_its_templates_from_the_callback_context(webhook_receiver, monkeypatch):
    from include.alerts.notifiers import AlertNotifier

    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_WEBHOOK", webhook_receiver.connection())
    notifier = AlertNotifier(
        "protection_triggered", "{{ params.symbol }} stop hit", severity="warning", details={"run": "{{ run_id }}"}
    )
    notifier({"params": {"symbol": "TSLA"}, "run_id": "scheduled__r1"})
    [body] = webhook_receiver.bodies()
    assert (body["event"], body["summary"], body["severity"], body["run_id"], body["details"]) == (
        "protection_triggered",
        "TSLA stop hit",
        "warning",
        "scheduled__r1",
        {"run": "scheduled__r1"},
    )
