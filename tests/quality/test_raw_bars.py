"""Raw-bar checks on real bars from the simulator, corrupted with SQL as a bad load or manual fix would.

Each corruption fails the matching check with a message naming symbol and date, fails that symbol's verdict,
leaves the clean symbol passing and every raw row in place. NULLs cannot reach raw.daily_bars (NOT NULL
columns), and neither can a duplicate (primary key): the duplicate check is exercised on a view that adds one.
"""

import json
from pathlib import Path

import pytest

from tests.quality.conftest import findings, sql

SESSIONS = 30
RAW_ROWS = "SELECT b::text FROM raw.daily_bars AS b ORDER BY symbol, session_date"  # as text: NaN == NaN

# (check, SQL corrupting TSLA's k-th latest session, expected message after "TSLA <date>: ")
CORRUPTIONS = {
    "high_below_low": ("raw_ohlc_consistent", "UPDATE raw.daily_bars SET high = 10, low = 12", "high 10 < low 12"),
    "negative_price": ("raw_prices_positive", "UPDATE raw.daily_bars SET close = -5", "close -5 <= 0"),
    "nan_close": ("raw_values_not_null_or_nan", "UPDATE raw.daily_bars SET close = 'NaN'", "close is NaN"),
    "negative_volume": ("raw_volume_non_negative", "UPDATE raw.daily_bars SET volume = -100", "volume -100 < 0"),
    "missing_session": ("raw_no_missing_sessions", "DELETE FROM raw.daily_bars", "no bar for this XNYS session"),
}


def _tsla_session(dsn, k):
    """TSLA's k-th latest session (1 = latest)."""
    return sql(dsn, "SELECT session_date FROM raw.daily_bars WHERE symbol = 'TSLA' ORDER BY session_date DESC"
                    " OFFSET %s LIMIT 1", (k - 1,))[0][0]


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_bad_bar_fails_its_symbol_only(kind, clean_db, simulator, load_bars, validate):
    check, statement, message = CORRUPTIONS[kind]
    load_bars(clean_db, simulator, symbols=("TSLA", "NVDA"), sessions=SESSIONS)
    day = _tsla_session(clean_db, 5)
    sql(clean_db, f"{statement} WHERE symbol = 'TSLA' AND session_date = %s", (day,))
    rows_before = sql(clean_db, RAW_ROWS)

    run = validate(include_mart=False)

    assert findings(run, check) == {"TSLA": [f"TSLA {day.isoformat()}: {message}"]}
    tsla, nvda = run.verdicts["TSLA"], run.verdicts["NVDA"]
    assert tsla.verdict == "fail"
    assert any(r.startswith(f"TSLA {day.isoformat()}: {message}") and r.endswith(f"[{check}]") for r in tsla.reasons)
    assert (nvda.verdict, nvda.reasons) == ("pass", ())
    assert sql(clean_db, RAW_ROWS) == rows_before  # validation reads only
    stored = dict(sql(clean_db, "SELECT symbol, verdict FROM quality.symbol_verdicts WHERE run_key = 'test/run'"))
    assert stored == {"TSLA": "fail", "NVDA": "pass"}


def _close(dsn, symbol, day):
    return sql(dsn, "SELECT close FROM raw.daily_bars WHERE symbol = %s AND session_date = %s", (symbol, day))[0][0]


def test_a_price_jump_fails_its_symbol_only(clean_db, simulator, load_bars, validate):
    """TSLA's bars from its 5th-latest session on are scaled by 1.9 (an unadjusted corporate action, a bad
    feed): one close-to-close jump of about +90 %. NVDA and AAPL keep their real simulator bars and pass."""
    load_bars(clean_db, simulator, symbols=("TSLA", "NVDA", "AAPL"), sessions=SESSIONS)
    day, before = _tsla_session(clean_db, 5), _tsla_session(clean_db, 6)
    sql(clean_db, "UPDATE raw.daily_bars SET open = open * 1.9, high = high * 1.9, low = low * 1.9,"
                  " close = close * 1.9 WHERE symbol = 'TSLA' AND session_date >= %s", (day,))
    close, prev = _close(clean_db, "TSLA", day), _close(clean_db, "TSLA", before)
    move = close / prev - 1
    assert move > 0.8  # about +90 %: the simulator's daily moves are a few percent
    expected = (f"TSLA {day.isoformat()}: close {close!r} is +{round(move * 100, 1)}% from {prev!r} on "
                f"{before.isoformat()} (more than 40%)")

    run = validate(include_mart=False)

    assert findings(run, "raw_no_price_jump") == {"TSLA": [expected]}
    assert run.summary["failed_checks"] == ["raw_no_price_jump"]  # the scaled bars are otherwise consistent
    assert run.verdicts["TSLA"].verdict == "fail"
    assert run.verdicts["TSLA"].reasons == (f"{expected} [raw_no_price_jump]",)
    assert {s: v.verdict for s, v in run.verdicts.items()} == {"TSLA": "fail", "NVDA": "pass", "AAPL": "pass"}

    # A run whose range starts at the jump compares its first bar with the bar before the range.
    narrow = validate(sessions=5, include_mart=False, run_key="test/narrow")
    assert findings(narrow, "raw_no_price_jump") == {"TSLA": [expected]}

    # A genuine move: raising the limit (QUALITY_MAX_DAILY_MOVE) re-enables the symbol.
    assert validate(include_mart=False, max_daily_move=1.0, run_key="test/raised").verdicts["TSLA"].verdict == "pass"


def test_the_move_limit_comes_from_settings(clean_db, simulator, load_bars, validate, monkeypatch):
    load_bars(clean_db, simulator, symbols=("TSLA", "NVDA"), sessions=SESSIONS)
    day = _tsla_session(clean_db, 3)
    sql(clean_db, "UPDATE raw.daily_bars SET open = open * 0.7, high = high * 0.7, low = low * 0.7,"
                  " close = close * 0.7 WHERE symbol = 'TSLA' AND session_date >= %s", (day,))  # about -30 %

    assert run_verdicts(validate(include_mart=False)) == {"TSLA": "pass", "NVDA": "pass"}
    monkeypatch.setenv("QUALITY_MAX_DAILY_MOVE", "0.2")
    run = validate(include_mart=False, run_key="test/strict")
    assert run_verdicts(run) == {"TSLA": "fail", "NVDA": "pass"}
    (message,) = findings(run, "raw_no_price_jump")["TSLA"]
    assert message.startswith(f"TSLA {day.isoformat()}: close ") and "is -" in message
    assert message.endswith("(more than 20%)")


def run_verdicts(run):
    return {s: v.verdict for s, v in run.verdicts.items()}


def test_duplicate_session_in_a_relation_without_the_primary_key(clean_db, simulator, load_bars, validate):
    load_bars(clean_db, simulator, symbols=("TSLA", "NVDA"), sessions=SESSIONS)
    day = _tsla_session(clean_db, 3)
    sql(clean_db, "CREATE SCHEMA quality_test")
    sql(clean_db, "CREATE VIEW quality_test.daily_bars AS SELECT * FROM raw.daily_bars UNION ALL"
                  " SELECT * FROM raw.daily_bars WHERE symbol = 'TSLA' AND session_date = %s", (day,))

    run = validate(include_mart=False, raw_relation="quality_test.daily_bars")

    assert findings(run, "raw_one_bar_per_session") == {"TSLA": [f"TSLA {day.isoformat()}: 2 bars for one session"]}
    assert run.verdicts["TSLA"].verdict == "fail"
    assert run.verdicts["NVDA"].verdict == "pass"


def test_bar_on_a_holiday_fails(clean_db, simulator, load_bars, validate):
    load_bars(clean_db, simulator, symbols=("TSLA",), sessions=SESSIONS)
    last = _tsla_session(clean_db, 1)
    sql(clean_db, "UPDATE raw.daily_bars SET session_date = %s WHERE symbol = 'TSLA' AND session_date = %s",
        (_first_weekend_day_after(_tsla_session(clean_db, 10)), _tsla_session(clean_db, 10)))
    run = validate(include_mart=False)
    messages = findings(run, "raw_one_bar_per_session")["TSLA"]
    assert len(messages) == 1 and messages[0].endswith("bar on a day that is not a XNYS session")
    assert run.verdicts["TSLA"].verdict == "fail"
    assert run.verdicts["TSLA"].last_session == last


def _first_weekend_day_after(day):
    from datetime import timedelta

    while day.weekday() < 5:
        day += timedelta(days=1)
    return day


def test_stale_bars_warn_then_fail(clean_db, simulator, load_bars, validate):
    """One session behind the last completed session warns (the next load catches up); six sessions fail."""
    load_bars(clean_db, simulator, symbols=("TSLA", "NVDA", "AAPL"), sessions=SESSIONS)
    latest = _tsla_session(clean_db, 1)
    sql(clean_db, "DELETE FROM raw.daily_bars WHERE symbol = 'TSLA' AND session_date = %s", (latest,))
    sql(clean_db, "DELETE FROM raw.daily_bars WHERE symbol = 'AAPL' AND session_date >= %s",
        (_tsla_session(clean_db, 5),))

    run = validate(include_mart=False)

    previous = _tsla_session(clean_db, 1)
    assert findings(run, "raw_fresh") == {"TSLA": [
        f"TSLA: latest bar {previous.isoformat()} is 1 session(s) behind the last completed XNYS session "
        f"{latest.isoformat()}"]}
    assert list(findings(run, "raw_not_stale")) == ["AAPL"]
    assert run.verdicts["TSLA"].verdict == "warn"
    assert run.verdicts["AAPL"].verdict == "fail"
    assert run.verdicts["NVDA"].verdict == "pass"
    assert run.summary["verdicts"] == {"pass": 1, "warn": 1, "fail": 1}


def test_requested_symbol_without_bars_fails(clean_db, simulator, load_bars, validate):
    load_bars(clean_db, simulator, symbols=("NVDA",), sessions=SESSIONS)
    run = validate(symbols=["NVDA", "MSFT"], include_mart=False)
    assert list(findings(run, "raw_bars_present")) == ["MSFT"]
    assert (run.verdicts["MSFT"].verdict, run.verdicts["NVDA"].verdict) == ("fail", "pass")


def test_reports_summary_and_idempotent_rerun(clean_db, simulator, load_bars, validate):
    load_bars(clean_db, simulator, symbols=("TSLA", "NVDA"), sessions=SESSIONS)
    sql(clean_db, "UPDATE raw.daily_bars SET high = low - 1 WHERE symbol = 'TSLA'"
                  " AND session_date = (SELECT max(session_date) FROM raw.daily_bars)")
    run = validate(include_mart=False)

    paths = run.paths
    assert set(paths) == {"gx_raw_daily_bars", "data_docs", "verdicts", "summary"}
    gx_result = json.loads(Path(paths["gx_raw_daily_bars"]).read_text())
    assert gx_result["success"] is False and gx_result["statistics"]["unsuccessful_expectations"] == 1
    docs = "".join(p.read_text() for p in Path(paths["data_docs"]).parent.glob("validations/**/*.html"))
    assert "high" in docs and "TSLA" in docs  # the offending rows are readable in Data Docs
    assert json.loads(Path(paths["summary"]).read_text()) == run.summary
    assert run.summary["checks"] == {"evaluated": 10, "passed": 9, "failed": 1, "warned": 0, "errored": 0}
    assert run.summary["failed_checks"] == ["raw_ohlc_consistent"]
    assert run.summary["verdicts"] == {"pass": 1, "warn": 0, "fail": 1}

    validate(include_mart=False)  # a retried task: same run key, rows overwritten, not duplicated
    assert sql(clean_db, "SELECT count(*) FROM quality.symbol_verdicts") == [(2,)]
