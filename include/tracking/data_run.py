"""``record_data_run``: the market-data DAG's run in MLflow in one call (params, row counts, checks, samples).

Experiment and samples: docs/tracking.md ("The market-data run").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.settings import Settings
from include.tracking.debug import debug_mode, log_debug_context, log_debug_step
from include.tracking.logger import RunLogger
from include.tracking.runs import end_run, start_run

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_DATA_EXPERIMENT = "ibkr-stock-data"


def data_experiment() -> str:
    return Settings.from_env().mlflow_data_experiment or DEFAULT_DATA_EXPERIMENT


def _sql_sample(db_url: str, sql: str, limit: int) -> tuple[list[str], list[tuple[Any, ...]]]:
    import psycopg2

    conn = psycopg2.connect(db_url)
    try:
        conn.set_session(readonly=True)  # a sample query must never change the data it describes
        with conn.cursor() as cur:
            cur.execute(sql)
            return [d.name for d in cur.description], cur.fetchmany(limit)
    finally:
        conn.close()


def record_data_run(
    *,
    dag_id: str,
    run_id: str,
    symbols: Sequence[str],
    rows_per_layer: Mapping[str, int],
    checks_passed: int,
    checks_failed: int,
    validation_status: str,
    session_start: date | str | None = None,
    session_end: date | str | None = None,
    samples: Mapping[str, pd.DataFrame | str] | None = None,
    reports: Sequence[str | Path] = (),
    outcome: str = "success",
    try_number: int | None = None,
    mlflow_run_id: str | None = None,
    experiment: str | None = None,
    db_url: str | None = None,
    sample_rows: int = 100,
    params: Mapping[str, Any] | None = None,
    tracking_uri: str | None = None,
) -> str:
    """Log one market-data DAG run and end it with ``outcome``; returns the MLflow run id.

    ``rows_per_layer`` -> metrics ``rows/<layer>``; ``samples`` -> ``samples/<name>.csv`` (a SQL string runs
    on ``db_url``, default the market DB); ``reports`` (files or dirs, e.g. GX data docs) -> ``validation/``.
    Logs into ``mlflow_run_id`` when the DAG started one, else starts/resumes the DAG run's run.
    A retry whose validation status changed keeps the first as param, the latest as tag ``param.validation_status``.
    """
    missing = [str(p) for p in reports if not Path(p).exists()]
    if missing:  # before anything is logged: a half-recorded run is worse than a clear error
        raise FileNotFoundError(f"validation report(s) not found: {missing}")
    if any(isinstance(s, str) for s in (samples or {}).values()) and db_url is None:
        from include.settings import load_settings

        db_url = load_settings().require_market_db_url()
    debug = debug_mode()
    run_params = {
        "symbols": ",".join(symbols),
        "session_start": session_start,
        "session_end": session_end,
        "debug_mode": debug,
        "validation_status": validation_status,
        **(params or {}),
    }
    run_params = {k: v for k, v in run_params.items() if v is not None}  # no "None" strings in the UI
    if mlflow_run_id is None:
        experiment_name = experiment or data_experiment()
        mlflow_run_id = start_run(
            experiment_name, dag_id=dag_id, run_id=run_id, try_number=try_number, tracking_uri=tracking_uri
        )
    logger = RunLogger(mlflow_run_id, tracking_uri=tracking_uri)
    metrics: dict[str, Any] = {f"rows/{layer}": n for layer, n in rows_per_layer.items()}
    metrics.update(symbols_processed=len(symbols), checks_passed=checks_passed, checks_failed=checks_failed)
    logger.log_batch(
        params=run_params,
        metrics=metrics,
        tags={"validation_status": validation_status},
        on_param_change="tag",
    )
    for name, sample in (samples or {}).items():
        if isinstance(sample, str):
            columns, rows = _sql_sample(db_url or "", sample, sample_rows)
            logger.log_rows_sample(columns, rows, f"samples/{name}.csv", limit=sample_rows)
            log_debug_step(logger, name, sql=sample, columns=columns, rows=rows)
        else:
            logger.log_dataframe_sample(sample, f"samples/{name}.csv", rows=sample_rows)
    for report in reports:
        logger.log_file(report, "validation")
    if debug:
        log_debug_context(logger, run_params)
    end_run(mlflow_run_id, outcome, tracking_uri=tracking_uri)
    return mlflow_run_id
