"""Daily IBKR bars into ``raw.daily_bars``: after each XNYS session close, one batch per run.

Per-symbol fetch tasks (pool ``ibkr_api``: the gateway allows 5 concurrent history requests)
stage validated bars (a symbol's first load is COPYed straight into the table); ``load_bars`` upserts each staged
symbol in its own transaction and emits the ``raw.daily_bars`` asset (so dbt and the quality gate run for them).
A bad symbol fails only its own task (an unknown ticker or bad bars at once, gateway faults after retries);
``check_symbols`` then fails the run (or warns: ``on_symbol_error``) with one alert naming the symbols that did
not load.
"""

from datetime import datetime, timedelta

from airflow.sdk import Param, TriggerRule, dag, get_current_context, task

from include.alerts.notifiers import failure_notifier
from include.assets import RAW_DAILY_BARS
from include.steps import step_task
from include.timetables import ExchangeSessionTimetable


@dag(
    schedule=ExchangeSessionTimetable("XNYS", delay=timedelta(minutes=30)),
    start_date=datetime(2025, 1, 2),
    catchup=False,
    max_active_runs=3,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1), "retry_exponential_backoff": True,
                  "on_failure_callback": failure_notifier()},
    tags=["ibkr", "ingestion"],
    params={
        "symbols": Param(None, type=["null", "array"], items={"type": "string"},
                         description="Tickers to load; empty = STOCK_SYMBOLS (default TSLA, NVDA)."),
        "initial_history_sessions": Param(504, type="integer", minimum=1, maximum=5000,
                                          description="Sessions of history for a symbol's first load."),
        "on_symbol_error": Param(None, type=["null", "string"], enum=[None, "fail", "warn"],
                                 description="A symbol that did not load fails the run, or only warns; "
                                             "empty = ON_SYMBOL_ERROR (default fail)."),
    },
    doc_md=__doc__,
)
def ibkr_ingest_daily_bars():
    @task
    def resolve_symbols() -> list[str]:
        from include.marketdata.tasks import symbols_from_params

        return symbols_from_params(get_current_context()["params"])

    @task(pool="ibkr_api", map_index_template="{{ symbol }}", multiple_outputs=False)
    def fetch_bars(symbol: str) -> dict:
        from include.marketdata import tasks

        context = get_current_context()
        context["symbol"] = symbol  # labels the mapped task with its ticker in the UI
        return tasks.fetch_bars(symbol, context)

    # The symbols fetched load even when others failed; their results arrive, the failed ones' do not. The fetch
    # summaries (one per symbol) are not rendered fields, nor is the summary of every symbol logged (step_task).
    @step_task(outlets=[RAW_DAILY_BARS], trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS, multiple_outputs=False)
    def load_bars(staged: list[dict]) -> dict:
        from include.marketdata import tasks

        # A slice fetches every mapped result in one request (iterating probes one index too far).
        return tasks.load_bars(list(staged[:]), get_current_context())

    @task(trigger_rule=TriggerRule.ALL_DONE, multiple_outputs=False)
    def check_symbols() -> dict:
        from include.marketdata import tasks

        return tasks.check_symbols(get_current_context(), load_task="load_bars", fetch_task="fetch_bars")

    load_bars(fetch_bars.expand(symbol=resolve_symbols())) >> check_symbols()


ibkr_ingest_daily_bars()
