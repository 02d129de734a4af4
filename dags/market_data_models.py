"""dbt models of the market data (staging -> intermediate -> marts), then the data-quality gate.

Runs whenever ``raw.daily_bars`` gets new data. Cosmos renders one ``dbt build`` task per model (its unit tests,
the model, its data tests; bar-sanity and indicator value tests warn, key tests fail and stop what follows).
Then Great Expectations checks the raw bars and ``fct_daily_indicators`` for the symbols in ``raw.daily_bars``
(or the ``symbols`` param) over the last ``sessions`` XNYS sessions up to the last completed one, and writes one
verdict per symbol (pass / warn / fail, with reasons) to ``quality.symbol_verdicts``: the trading DAGs trade only
symbols whose latest verdict is not ``fail``. The gate runs even when a dbt task failed, so a mart left behind
fails its symbols instead of leaving the previous run's verdicts in force. Reports (GX JSON, Data Docs) go to
``$QUALITY_REPORTS_DIR/<run>`` and, with the run's figures and mart samples, to MLflow (``ibkr-stock-data``).
"""

from datetime import datetime, timedelta

from airflow.sdk import Param, TriggerRule, dag, get_current_context, task
from cosmos import DbtTaskGroup

from include.alerts.notifiers import failure_notifier
from include.assets import FCT_DAILY_INDICATORS, FCT_LATEST_FEATURES, RAW_DAILY_BARS, SYMBOL_VERDICTS
from include.dbt_project import cosmos_task_group_kwargs


@dag(
    schedule=[RAW_DAILY_BARS],
    start_date=datetime(2025, 1, 2),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1), "on_failure_callback": failure_notifier()},
    tags=["dbt", "quality"],
    params={
        "symbols": Param(None, type=["null", "array"], items={"type": "string"},
                         description="Symbols to check; empty = every symbol in raw.daily_bars."),
        "sessions": Param(252, type="integer", minimum=1, maximum=10000,
                          description="XNYS sessions to check, ending at the last completed session."),
    },
    doc_md=__doc__,
)
def market_data_models():
    models = DbtTaskGroup(group_id="dbt_market", **cosmos_task_group_kwargs())

    @task(trigger_rule=TriggerRule.ALL_DONE, multiple_outputs=False)
    def resolve_scope() -> dict:
        from include.quality import tasks

        return tasks.resolve_scope(get_current_context())

    @task(multiple_outputs=False)
    def check_quality(scope: dict) -> dict:
        from include.quality import tasks

        return tasks.check_quality(scope, get_current_context())

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def log_data_run(scope: dict, summary: dict) -> str:
        from include.quality import tasks

        return tasks.log_data_run(scope, summary, get_current_context())

    @task(outlets=[FCT_DAILY_INDICATORS, FCT_LATEST_FEATURES, SYMBOL_VERDICTS])
    def publish() -> None:
        """Only when dbt and the gate both succeeded: marts and verdicts are fresh (strategies may run)."""

    @task(trigger_rule=TriggerRule.ONE_FAILED)
    def dbt_failed() -> None:
        """A leaf that fails the run when dbt did: the gate after dbt succeeding must not hide it."""
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("a dbt_market task failed; check_quality still failed the symbols it affects")

    scope = resolve_scope()
    models >> [scope, dbt_failed()]
    summary = check_quality(scope)
    log_data_run(scope, summary)
    [models, summary] >> publish()


market_data_models()
