"""A small mart history built once per session (simulator bars -> raw -> dbt), held in memory as a History."""

from __future__ import annotations

import pytest

SYMBOLS = ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF")
SESSIONS = 700


@pytest.fixture(scope="session")
def mart_history(market_db_url, tmp_path_factory):
    """``History`` of SYMBOLS x SESSIONS read back from analytics_marts (the database is emptied by other tests'
    clean_db afterwards, so the rows are kept in memory)."""
    import psycopg2

    from include.backtest.engine import load_history
    from include.marketdata import db
    from sim.synthetic import build_mart, load_simulator_bars

    with psycopg2.connect(market_db_url) as conn, conn.cursor() as cur:
        cur.execute("TRUNCATE raw.daily_bars")
        for schema in ("analytics_staging", "analytics_intermediate", "analytics_marts"):  # full build, not incremental
            cur.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    load_simulator_bars(market_db_url, SYMBOLS, SESSIONS)
    build_mart(market_db_url, tmp_path_factory.mktemp("dbt-backtest"))
    with db.connection(market_db_url) as conn:
        history = load_history(conn, SYMBOLS)
    with psycopg2.connect(market_db_url) as conn, conn.cursor() as cur:
        cur.execute("TRUNCATE raw.daily_bars")
    assert history.bars == len(SYMBOLS) * SESSIONS
    return history
