"""Train the next-session direction classifier on the indicator mart and promote it only when it is better.

Weekly after Friday's close (22:30 UTC, after the last daily bars of the week are ingested and modelled), and
on demand with params. ``train_model`` reads ``analytics_marts.fct_daily_indicators``, builds the scale-free
features of ``include/ml/features.py`` (the same function the ``ml`` strategy serves with), labels each session
with the next session's direction, trains on sessions before one cutoff date for all symbols and scores the
later sessions (never shuffled), then logs params, hold-out metrics and the model (signature, input example) to
MLflow experiment ``ibkr-signal-model`` and registers a version of ``ibkr_signal_direction``.
``promote_model`` scores that version and the current ``champion`` on the same hold-out rows and moves the
alias only when the candidate is strictly better (the first model becomes champion).
"""

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task

from include.alerts.notifiers import failure_notifier


@dag(
    schedule="30 22 * * 5",
    start_date=datetime(2025, 1, 3),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=2), "on_failure_callback": failure_notifier()},
    tags=["ml", "trading"],
    params={
        "symbols": Param(
            None,
            type=["null", "array"],
            items={"type": "string"},
            description="Train on these tickers; empty = every symbol in the mart",
        ),
        "model_type": Param(
            "logistic_regression",
            type="string",
            enum=["logistic_regression", "gradient_boosting", "random_forest", "dummy"],
            description="scikit-learn classifier (dummy = base-rate baseline)",
        ),
        "C": Param(1.0, type="number", exclusiveMinimum=0, description="Logistic regression: inverse L2 strength"),
        "n_estimators": Param(200, type="integer", minimum=1, maximum=5000, description="Tree ensembles"),
        "max_depth": Param(3, type="integer", minimum=1, maximum=32, description="Tree ensembles"),
        "holdout_fraction": Param(
            0.2,
            type="number",
            exclusiveMinimum=0,
            exclusiveMaximum=1,
            description="Share of the latest sessions held out",
        ),
        "cutoff_date": Param(
            None,
            type=["null", "string"],
            format="date",
            description="First hold-out session (overrides holdout_fraction)",
        ),
        "promotion_metric": Param(
            "roc_auc",
            type="string",
            enum=["roc_auc", "log_loss", "accuracy"],
            description="Hold-out metric the candidate must beat the champion on",
        ),
        "min_improvement": Param(0.0, type="number", minimum=0, description="Required margin over the champion"),
    },
    doc_md=__doc__,
)
def train_signal_model():
    @task(multiple_outputs=False)
    def start_mlflow_run() -> dict:
        from airflow.sdk.exceptions import AirflowFailException
        from pydantic import ValidationError

        from include.ml import tasks

        try:
            return tasks.start_run(get_current_context())
        except (ValidationError, ValueError) as exc:  # bad params: a retry cannot fix them
            raise AirflowFailException(str(exc)) from exc

    @task(multiple_outputs=False)
    def train_model(run: dict) -> dict:
        from include.ml import tasks

        return tasks.train_model(run)

    @task(multiple_outputs=False)
    def promote_model(run: dict, trained: dict) -> dict:
        from include.ml import tasks

        return tasks.promote_model(run, trained)

    @task
    def end_mlflow_run(run: dict | None = None) -> str | None:
        from include.ml import tasks

        return tasks.end_run(run, get_current_context())

    run = start_mlflow_run()
    promoted = promote_model(run, train_model(run))
    promoted >> end_mlflow_run(run).as_teardown(setups=run)


train_signal_model()
