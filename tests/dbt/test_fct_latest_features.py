"""fct_latest_features: one row per symbol = the last indicator row, with the latest snapshot."""

from datetime import UTC, datetime

import psycopg2

from include.ibkr.client import IBKRClient
from include.marketdata import db, loaders


def _rows(dsn, sql):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_latest_features_pick_the_last_session_and_snapshot(dbt, load_bars, clean_db, simulator):
    load_bars(clean_db, simulator, symbols=("TSLA", "NVDA"), sessions=250)
    with IBKRClient(simulator.base_url) as client, db.connection(clean_db) as conn:
        client.ensure_session()
        snaps = client.snapshot([client.resolve_contract("TSLA")], wait_s=0.01)
        loaders.load_snapshots(conn, snaps, "t", "ibkr:IBKR-SIM")
    ok, results = dbt("build")
    assert ok, [(r.node.name, r.message) for r in results if r.status not in ("success", "pass")]

    latest = _rows(clean_db, "SELECT symbol, session_date, close, sma_200, rsi_14, snapshot_last_price"
                             " FROM analytics_marts.fct_latest_features ORDER BY symbol")
    expected = _rows(clean_db, "SELECT DISTINCT ON (symbol) symbol, session_date, close, sma_200, rsi_14"
                               " FROM analytics_marts.fct_daily_indicators ORDER BY symbol, session_date DESC")
    assert [r[:5] for r in latest] == expected
    assert latest[1][0] == "TSLA" and latest[1][5] == snaps[0].last  # snapshot taken now, after the session
    assert latest[0][5] is None  # no NVDA snapshot
    assert all(r[3] is not None for r in latest)  # 250 sessions: SMA-200 defined
    assert snaps[0].captured_at <= datetime.now(UTC)
