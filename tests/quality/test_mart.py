"""Indicator-mart checks after a real dbt build: bad raw bars flowing into the mart, corrupted mart rows,
short histories (warn) and a mart that does not exist (its checks cannot run: every symbol fails)."""

import pytest

from tests.quality.conftest import findings, sql

HISTORY = 210  # past sma_200's warm-up, so a clean symbol passes


def _session(dsn, symbol, k):
    return sql(dsn, "SELECT session_date FROM raw.daily_bars WHERE symbol = %s ORDER BY session_date DESC"
                    " OFFSET %s LIMIT 1", (symbol, k - 1))[0][0]


def _build(dbt):
    ok, results = dbt("build")
    assert ok, [(r.node.name, r.status, r.message) for r in results if r.status in ("fail", "error")]


@pytest.mark.slow
def test_bad_bars_through_dbt_fail_only_their_symbol(clean_db, simulator, load_bars, dbt, validate):
    load_bars(clean_db, simulator, symbols=("TSLA", "NVDA"), sessions=HISTORY)
    latest, nan_day = _session(clean_db, "TSLA", 1), _session(clean_db, "TSLA", 3)
    sql(clean_db, "UPDATE raw.daily_bars SET high = low - 1 WHERE symbol = 'TSLA' AND session_date = %s", (latest,))
    sql(clean_db, "UPDATE raw.daily_bars SET close = 'NaN' WHERE symbol = 'TSLA' AND session_date = %s", (nan_day,))
    _build(dbt)  # bar-sanity tests only warn: the models of every symbol are built

    run = validate()

    assert run.verdicts["NVDA"].verdict == "pass", run.verdicts["NVDA"].reasons
    tsla = run.verdicts["TSLA"]
    assert tsla.verdict == "fail"
    assert set(run.summary["failed_checks"]) >= {"raw_ohlc_consistent", "raw_values_not_null_or_nan",
                                                  "mart_values_not_nan"}
    assert findings(run, "mart_values_not_nan")["TSLA"][0].startswith(f"TSLA {nan_day.isoformat()}: close is NaN")
    assert any(r.startswith(f"TSLA {latest.isoformat()}: high ") for r in tsla.reasons)
    assert sql(clean_db, "SELECT count(*) FROM raw.daily_bars") == [(2 * HISTORY,)]


@pytest.mark.slow
def test_corrupted_mart_rows_fail_their_symbol(clean_db, simulator, load_bars, dbt, validate):
    load_bars(clean_db, simulator, symbols=("TSLA", "NVDA", "AAPL"), sessions=HISTORY)
    _build(dbt)
    day = {k: _session(clean_db, "TSLA", k).isoformat() for k in (2, 3, 4, 5)}
    mart = "analytics_marts.fct_daily_indicators"
    for k, change in ((2, "rsi_14 = 101"), (3, "atr_14 = -1"), (4, "bb_lower = bb_middle + 1"), (5, "sma_200 = NULL")):
        sql(clean_db, f"UPDATE {mart} SET {change} WHERE symbol = 'TSLA' AND session_date = %s", (day[k],))
    nvda_latest = _session(clean_db, "NVDA", 1)
    sql(clean_db, f"DELETE FROM {mart} WHERE symbol = 'NVDA' AND session_date = %s", (nvda_latest,))

    run = validate()

    assert findings(run, "mart_rsi_in_range") == {"TSLA": [f"TSLA {day[2]}: rsi_14 101 outside [0, 100]"]}
    assert findings(run, "mart_atr_non_negative") == {"TSLA": [f"TSLA {day[3]}: atr_14 -1 < 0"]}
    (bands,) = findings(run, "mart_bollinger_ordered")["TSLA"]
    assert bands.startswith(f"TSLA {day[4]}: bb_lower ") and "> bb_middle" in bands
    (nulls,) = findings(run, "mart_nulls_only_in_warmup")["TSLA"]
    assert nulls.startswith(f"TSLA {day[5]}: sma_200 is NULL after its 199-session warm-up")
    assert list(findings(run, "mart_latest_session")) == ["NVDA"]
    assert findings(run, "mart_rows_for_all_bars") == {
        "NVDA": [f"NVDA {nvda_latest.isoformat()}: bar in raw.daily_bars has no mart row"]}
    assert {s: v.verdict for s, v in run.verdicts.items()} == {"TSLA": "fail", "NVDA": "fail", "AAPL": "pass"}


@pytest.mark.slow
def test_short_history_warns_about_the_warm_up(clean_db, simulator, load_bars, dbt, validate):
    load_bars(clean_db, simulator, symbols=("TSLA",), sessions=60)
    load_bars(clean_db, simulator, symbols=("NVDA",), sessions=HISTORY)
    _build(dbt)

    run = validate()

    latest = _session(clean_db, "TSLA", 1).isoformat()
    assert findings(run, "mart_warmup_complete") == {
        "TSLA": [f"TSLA {latest}: only 60 sessions of history; warming up: sma_200 (needs 200)"]}
    assert run.summary["checks"]["failed"] == 0  # NULL warm-up rows of the 60 sessions are expected
    assert {s: v.verdict for s, v in run.verdicts.items()} == {"TSLA": "warn", "NVDA": "pass"}


def test_missing_mart_fails_every_symbol_but_raw_is_still_checked(clean_db, simulator, load_bars, validate):
    load_bars(clean_db, simulator, symbols=("TSLA", "NVDA"), sessions=30)

    run = validate()  # no dbt build: analytics_marts.fct_daily_indicators does not exist

    assert run.validated_anything
    assert run.summary["checks"]["errored"] == 10 and run.summary["checks"]["passed"] == 10
    for verdict in run.verdicts.values():
        assert verdict.verdict == "fail"
        assert any(r.startswith("check mart_keys_unique could not run: analytics_marts.fct_daily_indicators")
                   for r in verdict.reasons), verdict.reasons
