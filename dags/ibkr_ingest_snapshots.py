"""IBKR market snapshots into ``raw.market_snapshots`` every 5 minutes while XNYS is open.

Snapshots are de-duplicated on (symbol, gateway update time), so retries and overlapping runs
never double-count. Emits the ``raw.market_snapshots`` asset. An unknown symbol is left out (not retried) and the
others are stored; ``check_symbols`` then fails the run (or warns: ``on_symbol_error``) with one alert naming it.
"""

from datetime import datetime, timedelta

from airflow.sdk import Param, TriggerRule, dag, get_current_context, task

from include.alerts.notifiers import failure_notifier
from include.assets import RAW_MARKET_SNAPSHOTS
from include.timetables import ExchangeIntradayTimetable


@dag(
    schedule=ExchangeIntradayTimetable("XNYS", every=timedelta(minutes=5)),
    start_date=datetime(2025, 1, 2),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=4),
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30), "on_failure_callback": failure_notifier()},
    tags=["ibkr", "ingestion"],
    params={
        "symbols": Param(None, type=["null", "array"], items={"type": "string"},
                         description="Tickers to snapshot; empty = STOCK_SYMBOLS."),
        "on_symbol_error": Param(None, type=["null", "string"], enum=[None, "fail", "warn"],
                                 description="A symbol without a snapshot fails the run, or only warns; "
                                             "empty = ON_SYMBOL_ERROR (default fail)."),
    },
    doc_md=__doc__,
)
def ibkr_ingest_snapshots():
    @task
    def resolve_symbols() -> list[str]:
        from include.marketdata.tasks import symbols_from_params

        return symbols_from_params(get_current_context()["params"])

    @task(pool="ibkr_api", outlets=[RAW_MARKET_SNAPSHOTS], multiple_outputs=False)
    def fetch_snapshots(symbols: list[str]) -> dict:
        from include.marketdata import tasks

        return tasks.fetch_snapshots(symbols, get_current_context())

    @task(trigger_rule=TriggerRule.ALL_DONE, multiple_outputs=False)
    def check_symbols() -> dict:
        from include.marketdata import tasks

        return tasks.check_symbols(get_current_context(), load_task="fetch_snapshots", fetch_task="fetch_snapshots")

    fetch_snapshots(resolve_symbols()) >> check_symbols()


ibkr_ingest_snapshots()
