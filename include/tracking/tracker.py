"""``MLflowTracker``: the workflow guide's start_run / log_metrics / log_artifacts / end_run, bound to one MLflow run
(the DAG run's) through the helpers of this package; ``mlflow`` is imported only when a call needs it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from include.tracking.links import MLFLOW_RUN_ID_XCOM_KEY
from include.tracking.logger import RunLogger
from include.tracking.runs import context_ids, end_run, start_run


class MLflowTracker:
    """One MLflow run per DAG run: ``start_run`` creates it (or reopens it on a retry or from another task),
    ``resume(run_id)`` binds a tracker in a later task, ``end_run`` closes it with the Airflow outcome.

    ``experiment_name`` defaults to ``mlflow.experiment_name`` of workflow.yaml (``{strategy}`` filled in from
    ``strategy``); the tracking URI to MLFLOW_TRACKING_URI, the ``mlflow_default`` connection, then the YAML.
    """

    def __init__(self, experiment_name: str | None = None, *, strategy: str | None = None,
                 tracking_uri: str | None = None, run_id: str | None = None) -> None:
        self._experiment_name = experiment_name
        self.strategy = strategy
        self.tracking_uri = tracking_uri
        self.run_id = run_id

    @classmethod
    def resume(cls, run_id: str, *, tracking_uri: str | None = None) -> MLflowTracker:
        """A tracker for a run another task started (its id comes from XCom ``mlflow_run_id``)."""
        if not run_id:
            raise ValueError("MLflowTracker.resume needs an MLflow run id")
        return cls(tracking_uri=tracking_uri, run_id=run_id)

    @property
    def experiment_name(self) -> str:
        if self._experiment_name:
            return self._experiment_name
        from include.config.workflow import ConfigLoader

        return ConfigLoader().get_mlflow_config().experiment(self.strategy)

    def start_run(self, context: Mapping[str, Any] | None = None, *, dag_id: str | None = None,
                  run_id: str | None = None, try_number: int | None = None, params: Mapping[str, Any] | None = None,
                  tags: Mapping[str, Any] | None = None, run_name: str | None = None) -> str:
        """Start (or reopen) the run of a DAG run: pass the task ``context``, or ``dag_id`` and ``run_id``.
        With a context the id is also pushed to XCom ``mlflow_run_id`` (the "MLflow run" extra link)."""
        ids: dict[str, Any] = context_ids(context) if context is not None else {}
        ids = {"dag_id": dag_id or ids.get("dag_id"), "run_id": run_id or ids.get("run_id"),
               "try_number": try_number if try_number is not None else ids.get("try_number")}
        if not ids["dag_id"] or not ids["run_id"]:
            raise ValueError("start_run needs the task context or dag_id and run_id: one MLflow run per DAG run")
        self.run_id = start_run(self.experiment_name, params=params, tags=tags, run_name=run_name,
                                tracking_uri=self.tracking_uri, **ids)
        if context is not None:
            context["ti"].xcom_push(key=MLFLOW_RUN_ID_XCOM_KEY, value=self.run_id)
        return self.run_id

    @property
    def logger(self) -> RunLogger:
        if not self.run_id:
            raise RuntimeError("no MLflow run: call start_run() first, or MLflowTracker.resume(run_id)")
        return RunLogger(self.run_id, tracking_uri=self.tracking_uri)

    def log_metrics(self, metrics: Mapping[str, Any], *, step: int | None = None) -> None:
        """Numbers (bools as 0/1; None skipped), in one batch."""
        self.logger.log_metrics(metrics, step=step)

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.logger.log_params(params)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.logger.set_tags(tags)

    def log_artifacts(self, path: str | Path, artifact_path: str | None = None) -> None:
        """A file (a chart, a report) or a directory with everything in it, under ``artifact_path``."""
        self.logger.log_file(path, artifact_path)

    def log_dict(self, obj: Any, artifact_file: str) -> None:
        self.logger.log_dict(obj, artifact_file)

    def end_run(self, status: str | Any = "success") -> str | None:
        """Close the run FINISHED (``success``), FAILED (``failed``) or KILLED; a repeat changes nothing."""
        return end_run(self.run_id, status, tracking_uri=self.tracking_uri)
