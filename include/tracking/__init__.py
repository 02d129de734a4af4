"""MLflow tracking helpers: one run per DAG run, resumed by id in every task (``mlflow`` imported lazily).

Typical wiring (``start_run`` -> ``RunLogger`` -> ``end_run``): docs/tracking.md.
"""

from include.tracking.data_run import DEFAULT_DATA_EXPERIMENT, data_experiment, record_data_run
from include.tracking.debug import debug_context, debug_mode, log_debug_context, log_debug_step, masked_env
from include.tracking.links import MLFLOW_RUN_ID_XCOM_KEY, START_TASK_ID, run_url, ui_url
from include.tracking.logger import RunLogger
from include.tracking.runs import context_ids, end_run, mlflow_status, run_artifact_uri, start_run
from include.tracking.store import artifact_root, client, ensure_experiment, resolve_tracking_uri
from include.tracking.tracker import MLflowTracker

__all__ = [
    "DEFAULT_DATA_EXPERIMENT",
    "MLFLOW_RUN_ID_XCOM_KEY",
    "START_TASK_ID",
    "MLflowTracker",
    "RunLogger",
    "artifact_root",
    "client",
    "context_ids",
    "data_experiment",
    "debug_context",
    "debug_mode",
    "end_run",
    "ensure_experiment",
    "log_debug_context",
    "log_debug_step",
    "masked_env",
    "mlflow_status",
    "record_data_run",
    "resolve_tracking_uri",
    "run_artifact_uri",
    "run_url",
    "start_run",
    "ui_url",
]
