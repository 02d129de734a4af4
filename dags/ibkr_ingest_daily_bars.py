"""Daily IBKR bars into ``raw.daily_bars``: after each XNYS session close, one batch per run.

Per-symbol fetch tasks (pool ``ibkr_api``: the gateway allows 5 concurrent history requests)
stage validated bars; ``load_bars`` upserts the whole batch in one transaction and emits the
``raw.daily_bars`` asset. A bad symbol fails its task by name and nothing is loaded.
"""

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task

from include.alerts.notifiers import failure_notifier
from include.assets import RAW_DAILY_BARS
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
    },
    doc_md=__doc__,
)
def ibkr_ingest_daily_bars():
    @task
    def resolve_symbols() -> list[str]:
        from include.marketdata.tasks import symbols_from_params

        return symbols_from_params(get_current_context()["params"])

    @task(pool="ibkr_api", map_index_template="{{ symbol }}")
    def fetch_bars(symbol: str) -> dict:
        from include.marketdata import tasks

        context = get_current_context()
        context["symbol"] = symbol  # labels the mapped task with its ticker in the UI
        return tasks.fetch_bars(symbol, context)

    @task(outlets=[RAW_DAILY_BARS])
    def load_bars(staged: list[dict]) -> dict:
        from include.marketdata import tasks

        # A slice fetches every mapped result in one request (iterating probes one index too far).
        return tasks.load_bars(list(staged[:]), get_current_context())

    load_bars(fetch_bars.expand(symbol=resolve_symbols()))


ibkr_ingest_daily_bars()
