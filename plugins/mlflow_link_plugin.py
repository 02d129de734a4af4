"""An "MLflow run" extra link on every task, pointing at the MLflow run of its DAG run.

Lookup (in the API server, per click): in the task's DAG run, the XCom key ``mlflow_run_id`` pushed by
any task, else the return value of task ``start_mlflow_run`` (the id, or a dict with an ``mlflow_run_id`` entry);
the newest wins. No run id, no link.
The UI base is ``MLFLOW_UI_URL`` (see ``include.tracking.links``); mlflow itself is never imported.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink

from include.tracking.links import MLFLOW_RUN_ID_XCOM_KEY, START_TASK_ID, run_url

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

RETURN_VALUE_KEY = "return_value"


def mlflow_run_id_for(dag_id: str, run_id: str) -> str | None:
    """The MLflow run id recorded in XCom for a DAG run (metadata DB query, as the API server runs it)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import and_, or_

    query = (
        XComModel.get_many(run_id=run_id, dag_ids=dag_id)
        .where(
            or_(
                XComModel.key == MLFLOW_RUN_ID_XCOM_KEY,
                and_(XComModel.task_id == START_TASK_ID, XComModel.key == RETURN_VALUE_KEY),
            )
        )
        .with_only_columns(XComModel.key, XComModel.value)
    )
    with create_session() as session:
        rows = session.execute(query).all()
    # Prefer the explicit key over a return value; rows come newest first.
    rows.sort(key=lambda row: row.key != MLFLOW_RUN_ID_XCOM_KEY)
    for row in rows:
        value = _decode(row.value)
        if isinstance(value, dict):  # start_mlflow_run returned the run's description (train_signal_model)
            value = value.get(MLFLOW_RUN_ID_XCOM_KEY)
        if isinstance(value, str) and value:
            return value
    return None


def _decode(raw: Any) -> Any:
    try:
        return json.loads(raw) if isinstance(raw, str | bytes) else raw
    except ValueError:
        return raw


class MlflowRunLink(BaseOperatorLink):
    name = "MLflow run"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        return run_url(mlflow_run_id_for(ti_key.dag_id, ti_key.run_id)) or ""


class MlflowLinkPlugin(AirflowPlugin):
    name = "mlflow_link"
    global_operator_extra_links = [MlflowRunLink()]
