"""Task bodies of ``train_signal_model``: start the MLflow run -> train + register -> promote -> end the run.

Why the hold-out rows are stored as a run artifact: docs/ml-signal-model.md ("Modules").
"""

from __future__ import annotations

from datetime import date
from typing import Any

from include.ml.features import FEATURE_NAMES, LABEL, Dataset

HOLDOUT_ARTIFACT = "holdout/holdout.csv"
_FAILED = {"failed", "upstream_failed"}


def train_params(params: dict[str, Any]) -> Any:
    """The DAG params as ``TrainParams`` (unknown keys are ignored here: ``symbols`` is not a model param)."""
    from include.ml.train import TrainParams

    fields = set(TrainParams.model_fields)
    return TrainParams.model_validate({k: v for k, v in params.items() if k in fields and v not in (None, "")})


def start_run(context: Any) -> dict[str, Any]:
    """Validate the params and open (or, on a retry, reopen) the DAG run's MLflow run."""
    from include.ml.registry import experiment_name, model_name
    from include.settings import parse_symbols
    from include.tracking import context_ids, start_run

    params = dict(context["params"])
    model_params = train_params(params)  # raises ValidationError on a bad param
    symbols = list(parse_symbols(params["symbols"])) if params.get("symbols") else None
    ids = context_ids(context)
    mlflow_run_id = start_run(
        experiment_name(),
        dag_id=ids["dag_id"],
        run_id=ids["run_id"],
        try_number=ids["try_number"],
        tags={"registered_model": model_name()},
    )
    return {
        "mlflow_run_id": mlflow_run_id,
        "model_name": model_name(),
        "symbols": symbols,
        "params": model_params.model_dump(mode="json"),
    }


def train_model(run: dict[str, Any]) -> dict[str, Any]:
    """Read the mart, train on the sessions before the cutoff, log + register the version, keep the hold-out."""
    from include.ml.features import load_training_frame
    from include.ml.registry import log_and_register
    from include.ml.train import TrainParams, train
    from include.settings import load_settings
    from include.tracking import RunLogger

    params = TrainParams.model_validate(run["params"])
    frame = load_training_frame(load_settings().require_market_db_url(), run["symbols"])
    if frame.empty:
        raise LookupError(f"no rows in the indicator mart for {run['symbols'] or 'any symbol'}")
    result = train(frame, params)
    version = log_and_register(result, run["mlflow_run_id"], name=run["model_name"])
    RunLogger(run["mlflow_run_id"]).log_text(holdout_csv(result.holdout), HOLDOUT_ARTIFACT)
    return {
        "version": version,
        "cutoff_date": result.cutoff.isoformat(),
        "metrics": result.metrics,
        **{k: v for k, v in result.summary().items() if k.endswith("_rows")},
    }


def promote_model(run: dict[str, Any], trained: dict[str, Any]) -> dict[str, Any]:
    """Candidate vs champion on the stored hold-out rows; the alias moves only when the candidate is better."""
    from include.ml.registry import promote_if_better
    from include.ml.train import TrainParams
    from include.tracking import client

    params = TrainParams.model_validate(run["params"])
    path = client().download_artifacts(run["mlflow_run_id"], HOLDOUT_ARTIFACT)
    with open(path, encoding="utf-8") as handle:
        holdout = holdout_from_csv(handle.read())
    return promote_if_better(
        run["model_name"],
        trained["version"],
        holdout,
        run["mlflow_run_id"],
        metric=params.promotion_metric,
        min_improvement=params.min_improvement,
    )


def end_run(run: dict[str, Any] | None, context: Any) -> str | None:
    """Close the MLflow run FAILED when another task of this DAG run failed, else FINISHED."""
    from include.tracking import end_run

    if not run:
        return None
    ti = context["ti"]
    states = ti.get_task_states(dag_id=context["dag"].dag_id, run_ids=[context["run_id"]]).get(context["run_id"], {})
    failed = any(state in _FAILED for task_id, state in states.items() if task_id != ti.task_id)
    return end_run(run["mlflow_run_id"], "failed" if failed else "success")


def holdout_csv(holdout: Dataset) -> str:
    """The hold-out rows (meta, features, label) as CSV; floats in repr precision, so they read back exactly."""
    import pandas as pd

    return pd.concat([holdout.meta, holdout.X, holdout.y.rename(LABEL)], axis=1).to_csv(index=False)


def holdout_from_csv(text: str) -> Dataset:
    import io

    import pandas as pd

    frame = pd.read_csv(io.StringIO(text), float_precision="round_trip")
    meta = frame[["symbol", "session_date", "next_session_date"]].copy()
    for column in ("session_date", "next_session_date"):
        meta[column] = [date.fromisoformat(str(v)[:10]) for v in meta[column]]
    return Dataset(frame[list(FEATURE_NAMES)].astype("float64"), frame[LABEL].astype("int64"), meta)
