"""Symbols on demand (PostgreSQL): which symbols need data, and the short-circuit when none does. The fetch, dbt and
gate path runs end to end in tests/dags/test_ibkr_trading_strategy.py."""

from datetime import date, timedelta

import psycopg2

from include.ibkr.models import Bar
from include.marketdata import db, loaders
from include.settings import Settings
from include.trading.on_demand import backfill, stale_symbols

SESSION = date(2024, 1, 10)


def _load(dsn, symbol, last, n=5):
    bars = [Bar(symbol, 1, last - timedelta(days=i), 10.0, 11.0, 9.0, 10.5, 100.0) for i in range(n)]
    with db.connection(dsn) as conn:
        loaders.stage_bars(conn, "t", symbol, bars, "ibkr:test")
        loaders.upsert_staged_bars(conn, "t")


def _features(dsn, rows):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA analytics_marts; CREATE TABLE analytics_marts.fct_latest_features"
                    " (symbol text PRIMARY KEY, session_date date)")
        cur.executemany("INSERT INTO analytics_marts.fct_latest_features VALUES (%s, %s)", rows)


def test_stale_symbols_name_what_each_one_lacks(clean_db):
    _load(clean_db, "TSLA", SESSION)
    _load(clean_db, "NVDA", SESSION - timedelta(days=1))
    _load(clean_db, "AMD", SESSION)
    symbols = ["TSLA", "NVDA", "AMD", "AAPL"]
    with db.connection(clean_db) as conn:
        assert stale_symbols(conn, symbols, SESSION) == {
            "TSLA": "no features", "NVDA": "bars end 2024-01-09", "AMD": "no features", "AAPL": "no bars"}
    _features(clean_db, [("TSLA", SESSION), ("AMD", SESSION - timedelta(days=3))])
    with db.connection(clean_db) as conn:
        assert stale_symbols(conn, symbols, SESSION) == {
            "NVDA": "bars end 2024-01-09", "AMD": "features for 2024-01-07", "AAPL": "no bars"}


def test_nothing_stale_short_circuits_without_gateway_or_dbt(clean_db):
    _load(clean_db, "TSLA", SESSION)
    _features(clean_db, [("TSLA", SESSION)])

    def forbidden(*_args):
        raise AssertionError("must not be called when every symbol is current")

    result = backfill(clean_db, ["TSLA"], SESSION, "r1", open_client=forbidden, build=forbidden,
                      settings=Settings())
    assert result.needed == {} and result.loaded == [] and result.seconds < 1
