"""Incremental runs of the heavy models give a full refresh's values, and rebuild only what changed."""

import numpy as np
import psycopg2

COLUMNS = ["close", "sma_20", "sma_50", "sma_200", "ema_12", "ema_26", "macd", "macd_signal", "macd_hist", "rsi_14",
           "bb_upper", "bb_middle", "bb_lower", "atr_14", "volume_zscore_20", "avg_gain_14", "avg_loss_14"]
ENRICHED = ["session_index", "prev_close", "return_simple", "return_log", "true_range", "gap", "gap_pct"]


def _sql(dsn, statement, params=None):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall() if cur.description else None


def _table(dsn, relation, columns):
    rows = _sql(dsn, f"SELECT symbol, session_date, {', '.join(columns)} FROM {relation} ORDER BY 1, 2")
    keys = [(r[0], r[1]) for r in rows]
    return keys, np.array([r[2:] for r in rows], dtype=float)


def _assert_same(got, want, what):
    (got_keys, got_values), (want_keys, want_values) = got, want
    assert got_keys == want_keys, f"{what}: different rows"
    assert np.array_equal(np.isnan(got_values), np.isnan(want_values)), f"{what}: NULLs differ"
    defined = ~np.isnan(want_values)
    worst = np.max(np.abs(got_values[defined] - want_values[defined]))
    assert worst < 1e-9, f"{what}: incremental differs from a full refresh by {worst:g}"


def _hold_back(dsn, symbol, first_index, count=None):
    """Move sessions [first_index, first_index + count) of ``symbol`` out of raw.daily_bars (to load later)."""
    _sql(dsn, "CREATE TABLE IF NOT EXISTS public.held_back (LIKE raw.daily_bars)")
    _sql(dsn, """
        WITH picked AS (
            SELECT session_date FROM raw.daily_bars WHERE symbol = %(s)s ORDER BY session_date
            OFFSET %(o)s LIMIT %(n)s
        ), moved AS (
            DELETE FROM raw.daily_bars b USING picked p WHERE b.symbol = %(s)s AND b.session_date = p.session_date
            RETURNING b.*
        )
        INSERT INTO public.held_back SELECT * FROM moved""", {"s": symbol, "o": first_index, "n": count})


def test_incremental_runs_equal_a_full_refresh(dbt, load_bars, clean_db, simulator):
    load_bars(clean_db, simulator, symbols=("AAPL",), sessions=601)
    load_bars(clean_db, simulator, symbols=("MSFT", "GOOG", "IBM"), sessions=700)
    load_bars(clean_db, simulator, symbols=("META",), sessions=150)
    load_bars(clean_db, simulator, symbols=("SPY",), sessions=60)
    _sql(clean_db, "DROP TABLE IF EXISTS public.held_back")
    _hold_back(clean_db, "AAPL", 600)       # the next session starts a new 600-row block
    _hold_back(clean_db, "MSFT", 697)       # three new sessions
    _hold_back(clean_db, "GOOG", 450, 1)    # a missing session, backfilled later: shifts later positions
    _hold_back(clean_db, "META", 148)       # too little history to carry state: rebuilt from the start
    _hold_back(clean_db, "SPY", 0)          # a symbol that appears in the second run
    ok, results = dbt("build", "--select", "+fct_daily_indicators")
    assert ok, [(r.node.name, r.message) for r in results if r.status not in ("success", "pass")]
    untouched = _sql(clean_db, "SELECT session_date, xmin::text FROM analytics_marts.fct_daily_indicators"
                               " WHERE symbol = 'IBM' ORDER BY 1")

    # The next load: held-back sessions arrive, and a past MSFT bar is corrected (same day, new close).
    _sql(clean_db, "INSERT INTO raw.daily_bars SELECT symbol, conid, session_date, open, high, low, close, volume,"
                   " source, 'next', now() FROM public.held_back")
    _sql(clean_db, """
        UPDATE raw.daily_bars SET close = close * 1.01, high = greatest(high, close * 1.01), loaded_at = now()
        WHERE symbol = 'MSFT' AND session_date = (SELECT session_date FROM raw.daily_bars WHERE symbol = 'MSFT'
                                                  ORDER BY session_date OFFSET 650 LIMIT 1)""")
    ok, results = dbt("run", "--select", "+fct_daily_indicators")
    assert ok, [(r.node.name, r.message) for r in results if r.status != "success"]
    incremental = (_table(clean_db, "analytics_intermediate.int_daily_bars_enriched", ENRICHED),
                   _table(clean_db, "analytics_marts.fct_daily_indicators", COLUMNS))
    assert _sql(clean_db, "SELECT session_date, xmin::text FROM analytics_marts.fct_daily_indicators"
                          " WHERE symbol = 'IBM' ORDER BY 1") == untouched, "an unchanged symbol was rebuilt"
    counts = dict(_sql(clean_db, "SELECT symbol, count(*) FROM analytics_marts.fct_daily_indicators GROUP BY 1"))
    assert counts == {"AAPL": 601, "MSFT": 700, "GOOG": 700, "IBM": 700, "META": 150, "SPY": 60}

    ok, results = dbt("run", "--select", "+fct_daily_indicators", "--full-refresh")
    assert ok, [(r.node.name, r.message) for r in results if r.status != "success"]
    _assert_same(incremental[0], _table(clean_db, "analytics_intermediate.int_daily_bars_enriched", ENRICHED),
                 "int_daily_bars_enriched")
    _assert_same(incremental[1], _table(clean_db, "analytics_marts.fct_daily_indicators", COLUMNS),
                 "fct_daily_indicators")


def test_incremental_run_without_changes_rebuilds_nothing(dbt, load_bars, clean_db, simulator):
    load_bars(clean_db, simulator, symbols=("TSLA",), sessions=300)
    assert dbt("run", "--select", "+fct_daily_indicators")[0]
    before = _sql(clean_db, "SELECT count(*), max(xmin::text::bigint) FROM analytics_marts.fct_daily_indicators")
    assert dbt("run", "--select", "+fct_daily_indicators")[0]
    assert _sql(clean_db, "SELECT count(*), max(xmin::text::bigint) FROM analytics_marts.fct_daily_indicators") \
        == before
