"""One MLflow run per DAG run: start (or resume) it by explicit ids, end it with the Airflow outcome.

Run name, tags and how a retried task finds its run: docs/tracking.md ("Runs").
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from include.dbt_project import MANIFEST_PATH
from include.settings import Settings
from include.tracking.logger import RunLogger
from include.tracking.store import client, ensure_experiment, rest

REPO = Path(__file__).resolve().parents[2]
FINISHED, FAILED, KILLED = "FINISHED", "FAILED", "KILLED"
# Airflow task/DAG-run states (and MLflow's own names) -> MLflow's terminal statuses.
_STATUS = {
    "success": FINISHED, "skipped": FINISHED, "finished": FINISHED,
    "failed": FAILED, "upstream_failed": FAILED, "up_for_retry": FAILED, "failure": FAILED,
    "removed": KILLED, "restarting": KILLED, "shutdown": KILLED, "killed": KILLED,
}  # fmt: skip


def context_ids(context: Mapping[str, Any]) -> dict[str, Any]:
    """``dag_id``, ``run_id``, ``try_number`` from an Airflow task context, for ``start_run(**...)``."""
    ti = context["ti"]
    return {"dag_id": ti.dag_id, "run_id": context["run_id"], "try_number": getattr(ti, "try_number", None)}


def git_sha() -> str | None:
    """``GIT_SHA`` (set it in images without .git), else ``git rev-parse HEAD``; None when neither works."""
    return Settings.from_env().git_sha or _git_head()


@lru_cache(maxsize=1)
def _git_head() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def dbt_manifest_sha256(path: Path = MANIFEST_PATH) -> str | None:
    """Which dbt project build the run saw; None before ``dbt parse`` has written the manifest."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def run_tags(dag_id: str, run_id: str, try_number: int | None = None) -> dict[str, str]:
    tags = {"dag_id": dag_id, "run_id": run_id, "try_number": try_number, "git_sha": git_sha(),
            "dbt_manifest_sha256": dbt_manifest_sha256()}  # fmt: skip
    return {k: str(v) for k, v in tags.items() if v is not None}


def _quoted(value: str) -> str:
    if "'" in value:  # MLflow's filter syntax has no escape for quotes; Airflow run ids never contain one
        raise ValueError(f"cannot look up an MLflow run by {value!r}: it contains a quote")
    return f"'{value}'"


def find_run(experiment_id: str, dag_id: str, run_id: str, *, tracking_uri: str | None = None) -> str | None:
    """The MLflow run already recorded for this DAG run, if any (the oldest when there are several)."""
    filter_string = f"tags.dag_id = {_quoted(dag_id)} AND tags.run_id = {_quoted(run_id)}"
    if (api := rest(tracking_uri)) is not None:
        found = api.search_run_ids(experiment_id, filter_string, ["attributes.start_time ASC"])
        return found[0] if found else None
    runs = client(tracking_uri).search_runs(
        [experiment_id], filter_string=filter_string, max_results=1, order_by=["attributes.start_time ASC"]
    )
    return runs[0].info.run_id if runs else None


def start_run(
    experiment: str,
    *,
    dag_id: str,
    run_id: str,
    try_number: int | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    run_name: str | None = None,
    tracking_uri: str | None = None,
) -> str:
    """Start the MLflow run of a DAG run, or reopen it on a retry/clear; returns the MLflow run id.

    Push the id to XCom (return it from task ``start_mlflow_run`` or push key ``mlflow_run_id``) so
    later tasks log with ``RunLogger(run_id)`` and the "MLflow run" extra link finds it.
    """
    experiment_id = ensure_experiment(experiment, tracking_uri=tracking_uri)
    all_tags = {**run_tags(dag_id, run_id, try_number), **(tags or {})}
    mlflow_run_id = find_run(experiment_id, dag_id, run_id, tracking_uri=tracking_uri)
    if (api := rest(tracking_uri)) is not None:
        if mlflow_run_id is None:
            mlflow_run_id = api.create_run(experiment_id, run_name or f"{dag_id}__{run_id}",
                                           {k: str(v) for k, v in all_tags.items()})
            RunLogger(mlflow_run_id, tracking_uri=tracking_uri).log_batch(params=params, logged_params={})
        else:
            if api.get_run(mlflow_run_id)["info"]["status"] != "RUNNING":
                api.update_run(mlflow_run_id, "RUNNING")
            RunLogger(mlflow_run_id, tracking_uri=tracking_uri).log_batch(params=params, tags=all_tags)
        return mlflow_run_id
    mlflow_client = client(tracking_uri)
    if mlflow_run_id is None:
        run = mlflow_client.create_run(
            experiment_id, run_name=run_name or f"{dag_id}__{run_id}", tags={k: str(v) for k, v in all_tags.items()}
        )
        mlflow_run_id = run.info.run_id
        RunLogger(mlflow_run_id, tracking_uri=tracking_uri).log_batch(params=params, logged_params={})
    else:
        if mlflow_client.get_run(mlflow_run_id).info.status != "RUNNING":
            mlflow_client.update_run(mlflow_run_id, status="RUNNING")
        RunLogger(mlflow_run_id, tracking_uri=tracking_uri).log_batch(params=params, tags=all_tags)
    return mlflow_run_id


def run_artifact_uri(run_id: str, *, tracking_uri: str | None = None) -> str | None:
    """The run's artifact URI for ``RunLogger(..., artifact_uri=...)`` in other processes: known without a call in
    the process that started (or resumed) the run over REST. None where logging goes through MlflowClient (it
    finds the URI itself)."""
    api = rest(tracking_uri)
    return api.artifact_uri(run_id) if api is not None else None


def mlflow_status(outcome: str | Any) -> str:
    """Map an Airflow state (``"success"``, ``TaskInstanceState.FAILED``...) or MLflow status to MLflow's."""
    key = str(getattr(outcome, "value", outcome)).strip().lower()
    if key not in _STATUS:
        raise ValueError(f"unknown run outcome {outcome!r}; expected one of {sorted(_STATUS)}")
    return _STATUS[key]


def end_run(run_id: str | None, status: str | Any = "success", *, tracking_uri: str | None = None) -> str | None:
    """Terminate the run with the mapped status; a repeat with the same status changes nothing.

    ``run_id=None`` (the start task never pushed one) is a no-op, so a teardown task can always call it.
    """
    if not run_id:
        return None
    target = mlflow_status(status)
    if (api := rest(tracking_uri)) is not None:
        info = api.get_run(run_id)["info"]
        if info["status"] != target or not info.get("end_time"):
            api.update_run(run_id, target, terminated=True)
        return target
    mlflow_client = client(tracking_uri)
    info = mlflow_client.get_run(run_id).info
    if info.status != target or info.end_time is None:
        mlflow_client.set_terminated(run_id, status=target)
    return target
