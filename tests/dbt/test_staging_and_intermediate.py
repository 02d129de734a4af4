"""dbt build on bars from the simulator: staging casts, returns/ranges/gaps, and the data tests."""

import numpy as np
import psycopg2


def _rows(dsn, sql):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_build_computes_returns_ranges_and_gaps(dbt, load_bars, clean_db, simulator):
    load_bars(clean_db, simulator)
    ok, results = dbt("build")
    assert ok, [(r.node.name, r.status, r.message) for r in results if r.status not in ("success", "pass")]
    rows = _rows(clean_db, "SELECT session_date, open, high, low, close, prev_close, return_simple, return_log,"
                           " true_range, gap FROM analytics_intermediate.int_daily_bars_enriched"
                           " WHERE symbol = 'TSLA' ORDER BY session_date")
    assert len(rows) == 60
    first = rows[0]
    assert first[5] is None and first[6] is None and first[8] is None  # undefined, not zero
    o, h, lo, c = (np.array([r[i] for r in rows]) for i in (1, 2, 3, 4))
    np.testing.assert_allclose([r[6] for r in rows[1:]], c[1:] / c[:-1] - 1, rtol=0, atol=1e-12)
    np.testing.assert_allclose([r[7] for r in rows[1:]], np.log(c[1:] / c[:-1]), rtol=0, atol=1e-12)
    tr = np.maximum.reduce([h[1:] - lo[1:], abs(h[1:] - c[:-1]), abs(lo[1:] - c[:-1])])
    np.testing.assert_allclose([r[8] for r in rows[1:]], tr, rtol=0, atol=1e-12)
    np.testing.assert_allclose([r[9] for r in rows[1:]], o[1:] - c[:-1], rtol=0, atol=1e-12)


def test_bad_bars_warn_and_leave_other_symbols_built(dbt, load_bars, clean_db, simulator):
    """high < low, a negative price and a NaN for TSLA: its sanity tests warn (naming the rows), the build
    goes on, NVDA's models are complete, and raw keeps every row for inspection."""
    load_bars(clean_db, simulator, symbols=("TSLA", "NVDA"), sessions=40)
    with psycopg2.connect(clean_db) as conn, conn.cursor() as cur:  # corrupted rows, as a bad manual fix would
        cur.execute("""
            WITH d AS (SELECT session_date, row_number() OVER (ORDER BY session_date DESC) AS k
                       FROM raw.daily_bars WHERE symbol = 'TSLA')
            UPDATE raw.daily_bars b SET
                high = CASE WHEN d.k = 1 THEN b.low - 1 ELSE b.high END,
                close = CASE WHEN d.k = 2 THEN -5 WHEN d.k = 3 THEN 'NaN'::float8 ELSE b.close END
            FROM d WHERE b.symbol = 'TSLA' AND b.session_date = d.session_date AND d.k <= 3""")
    ok, results = dbt("build")
    assert ok, [(r.node.name, r.status, r.message) for r in results if r.status in ("fail", "error")]
    warned = {r.node.name for r in results if r.status == "warn"}
    assert any(name.startswith("ohlc_consistent") for name in warned), warned
    assert any(name.startswith("positive_stg_ibkr__daily_bars_close") for name in warned), warned
    assert _rows(clean_db, "SELECT count(*) FROM analytics_marts.fct_daily_indicators WHERE symbol = 'NVDA'"
                           " AND rsi_14 IS NOT NULL") == [(40 - 14,)]
    assert _rows(clean_db, "SELECT count(*) FROM raw.daily_bars") == [(80,)]  # raw data kept for inspection
