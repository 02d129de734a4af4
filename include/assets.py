"""Assets shared by producer and consumer DAGs (data-aware scheduling).

URIs name the logical market-data database (the ``market-db`` service in docker compose); the
asset ``name`` is what DAGs and the UI use.
"""

from airflow.sdk import Asset

RAW_DAILY_BARS = Asset(
    name="raw.daily_bars",
    uri="postgres://market-db:5432/market/raw/daily_bars",
    group="market_data",
)
RAW_MARKET_SNAPSHOTS = Asset(
    name="raw.market_snapshots",
    uri="postgres://market-db:5432/market/raw/market_snapshots",
    group="market_data",
)
