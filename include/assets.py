"""Assets shared by producer and consumer DAGs (data-aware scheduling).

What the URIs and names stand for: docs/scheduling.md.
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
FCT_DAILY_INDICATORS = Asset(
    name="analytics_marts.fct_daily_indicators",
    uri="postgres://market-db:5432/market/analytics_marts/fct_daily_indicators",
    group="market_data",
)
FCT_LATEST_FEATURES = Asset(
    name="analytics_marts.fct_latest_features",
    uri="postgres://market-db:5432/market/analytics_marts/fct_latest_features",
    group="market_data",
)
SYMBOL_VERDICTS = Asset(
    name="quality.symbol_verdicts",
    uri="postgres://market-db:5432/market/quality/symbol_verdicts",
    group="market_data",
)
