"""fct_daily_indicators against TA-Lib itself, column by column, on simulator bars and on a fixture."""

from datetime import date, timedelta

import numpy as np
import psycopg2
import pytest
import talib

from include.ibkr.models import Bar
from include.marketdata import db, loaders

COLUMNS = ["sma_20", "sma_50", "sma_200", "ema_12", "ema_26", "macd", "macd_signal", "macd_hist", "rsi_14",
           "bb_upper", "bb_middle", "bb_lower", "atr_14", "volume_zscore_20"]


def _mart(dsn, symbol):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT b.high, b.low, b.close, b.volume, " + ", ".join(f"f.{c}" for c in COLUMNS) +
                    " FROM analytics_marts.fct_daily_indicators f JOIN raw.daily_bars b USING (symbol, session_date)"
                    " WHERE symbol = %s ORDER BY session_date", (symbol,))
        rows = cur.fetchall()
    arr = np.array(rows, dtype=float)  # NULL -> nan
    return arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], dict(zip(COLUMNS, arr[:, 4:].T, strict=True))


def _reference(high, low, close, volume):
    macd, signal, hist = talib.MACD(close, 12, 26, 9)
    upper, middle, lower = talib.BBANDS(close, 20, 2, 2, matype=0)
    vol = np.full_like(volume, np.nan)
    for t in range(19, len(volume)):  # population z-score of today's volume in its 20-session window
        w = volume[t - 19:t + 1]
        vol[t] = (volume[t] - w.mean()) / w.std() if w.std() > 0 else np.nan
    return {
        "sma_20": talib.SMA(close, 20), "sma_50": talib.SMA(close, 50), "sma_200": talib.SMA(close, 200),
        "ema_12": talib.EMA(close, 12), "ema_26": talib.EMA(close, 26),
        "macd": macd, "macd_signal": signal, "macd_hist": hist, "rsi_14": talib.RSI(close, 14),
        "bb_upper": upper, "bb_middle": middle, "bb_lower": lower,
        "atr_14": talib.ATR(high, low, close, 14), "volume_zscore_20": vol,
    }


def _assert_matches(got, want):
    for col in COLUMNS:
        g, w = got[col], want[col]
        assert np.array_equal(np.isnan(g), np.isnan(w)), f"{col}: NULL warm-up differs from TA-Lib"
        defined = ~np.isnan(w)
        # 1e-6 relative to the price scale; values are ~1e-12 apart in practice
        scale = np.maximum(1.0, np.abs(w[defined]))
        assert np.max(np.abs(g[defined] - w[defined]) / scale) < 1e-9, f"{col} differs from TA-Lib"


def test_indicators_match_talib_on_simulator_bars(dbt, load_bars, clean_db, simulator):
    load_bars(clean_db, simulator, symbols=("TSLA", "NVDA"), sessions=1300)  # 3 blocks of 600
    ok, results = dbt("build")
    assert ok, [(r.node.name, r.message) for r in results if r.status not in ("success", "pass")]
    for symbol in ("TSLA", "NVDA"):
        high, low, close, volume, got = _mart(clean_db, symbol)
        assert len(close) == 1300
        _assert_matches(got, _reference(high, low, close, volume))


@pytest.fixture
def fixture_bars(clean_db):
    """Hand-made bars: a flat stretch (RSI with no moves, zero volume spread), jumps and a gap day."""
    rng = np.random.default_rng(7)
    closes = np.concatenate([np.full(30, 50.0), 50 + np.cumsum(rng.normal(0, 2, 270)), [10.0, 400.0, 399.0]])
    closes = np.abs(closes) + 1
    bars, day = [], date(2020, 1, 1)
    for i, c in enumerate(closes):
        o = closes[i - 1] if i else c
        h, lo = max(o, c) * 1.01, min(o, c) * 0.99
        vol = 1000.0 if i < 30 else float(rng.integers(1_000, 50_000))
        bars.append(Bar("FIXT", 1, day + timedelta(days=i), float(o), float(h), float(lo), float(c), vol))
    with db.connection(clean_db) as conn:
        loaders.stage_bars(conn, "fx", "FIXT", bars, "fixture")
        loaders.upsert_staged_bars(conn, "fx", ["FIXT"])
    return bars


def test_indicators_match_talib_on_a_fixed_fixture(dbt, clean_db, fixture_bars):
    ok, results = dbt("build", "--select", "+fct_daily_indicators")
    assert ok, [(r.node.name, r.status, r.message) for r in results if r.status not in ("success", "pass")]
    high, low, close, volume, got = _mart(clean_db, "FIXT")
    want = _reference(high, low, close, volume)
    assert np.isnan(got["volume_zscore_20"][19:30]).all()  # no spread in volume: undefined, not a division error
    _assert_matches(got, want)
