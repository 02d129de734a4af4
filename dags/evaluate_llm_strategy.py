"""Replay an LLM strategy over past sessions of the mart and score each prompt version against what followed
(direction hit rate, return after N sessions, calibration) with ``mlflow.genai.evaluate``: one MLflow run per prompt
version in experiment ``ibkr-llm-eval-<strategy>``, comparable side by side (docs/llm-tracing.md)."""

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, get_current_context, task

from include.alerts.notifiers import failure_notifier

with DAG(
    "evaluate_llm_strategy", schedule=None, start_date=datetime(2025, 1, 2), catchup=False, tags=["ml", "trading"],
    doc_md=__doc__, max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30), "on_failure_callback": failure_notifier()},
    params={
        "strategy_id": Param(4, type="integer", minimum=1, description="An llm strategy of strategies.yaml"),
        "prompt_versions": Param([], type="array", items={"type": "integer"},
                                 description="Registered prompt versions to compare; empty = the strategy's alias"),
        "symbols": Param(None, type=["null", "array"], items={"type": "string"},
                         description="Tickers; empty = the strategy's symbols"),
        "sessions": Param(20, type="integer", minimum=1, description="Past sessions replayed per symbol"),
        "horizon": Param(5, type="integer", minimum=1, description="Sessions after a decision it is scored on"),
    },
) as dag:

    @task
    def prompt_versions() -> list:
        return list(get_current_context()["params"]["prompt_versions"]) or [None]

    @task(multiple_outputs=False)
    def evaluate(prompt_version: int | None) -> dict:
        from include.llm.evaluation import run_evaluation

        context = get_current_context()
        p = context["params"]
        return run_evaluation(int(p["strategy_id"]), prompt_version=prompt_version, symbols=p["symbols"],
                              sessions=int(p["sessions"]), horizon=int(p["horizon"]),
                              tags={"dag_id": context["dag"].dag_id, "run_id": context["run_id"]})

    evaluate.expand(prompt_version=prompt_versions())
