"""MLflow UI URLs and the XCom contract behind the "MLflow run" extra link (no mlflow import here).

The XCom key and who reads it back: docs/tracking.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from include.settings import Settings

MLFLOW_RUN_ID_XCOM_KEY = "mlflow_run_id"
START_TASK_ID = "start_mlflow_run"
DEFAULT_UI_URL = "http://localhost:5500"  # `make up` serves the MLflow UI here
_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # MLflow ids are uuid4 hex; never put arbitrary text in a URL


def ui_url(environ: Mapping[str, str] | None = None) -> str:
    """``MLFLOW_UI_URL``, else an http(s) ``MLFLOW_TRACKING_URI`` (a server serves its UI), else :5500.

    Set ``MLFLOW_UI_URL`` when the tracking URI is a name only containers resolve (http://mlflow:5000).
    """
    settings = Settings.from_env(environ)
    url = settings.mlflow_ui_url or ""
    if not url:
        tracking = settings.mlflow_tracking_uri or ""
        url = tracking if tracking.startswith(("http://", "https://")) else DEFAULT_UI_URL
    return url.rstrip("/")


def run_url(
    run_id: str | None, experiment_id: str | None = None, *, environ: Mapping[str, str] | None = None
) -> str | None:
    """The MLflow UI page of a run; None when there is no (valid) run id."""
    if not run_id or not _RUN_ID.match(str(run_id)):
        return None
    if experiment_id is not None and _RUN_ID.match(str(experiment_id)):
        return f"{ui_url(environ)}/#/experiments/{experiment_id}/runs/{run_id}"
    return f"{ui_url(environ)}/#/runs/{run_id}"  # the UI's direct route looks the experiment up itself
