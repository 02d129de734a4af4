"""dbt models of the market data (staging -> intermediate -> marts) as an Airflow task group.

Runs whenever ``raw.daily_bars`` gets new data. Cosmos renders one task per dbt model, each
followed by its tests: a failing test fails its task and stops everything downstream. The marts
are emitted as Assets for the trading DAGs.
"""

from datetime import datetime, timedelta

from airflow.sdk import dag
from cosmos import DbtTaskGroup

from include.assets import RAW_DAILY_BARS
from include.dbt_project import cosmos_task_group_kwargs


@dag(
    schedule=[RAW_DAILY_BARS],
    start_date=datetime(2025, 1, 2),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1)},
    tags=["dbt"],
    doc_md=__doc__,
)
def market_data_models():
    DbtTaskGroup(group_id="dbt_market", **cosmos_task_group_kwargs())


market_data_models()
