"""``quality.symbol_verdicts``: idempotent DDL, upserts per run key, ``latest_verdicts`` and ``session_verdicts``."""

from datetime import UTC, date, datetime, timedelta

import pytest

from include.marketdata.db import connection
from include.quality.checks import Scope
from include.quality.gx_run import CheckResult
from include.quality.verdicts import NO_VERDICT, ensure_schema, latest_verdicts, session_verdicts, write_verdicts
from tests.quality.conftest import sql

SCOPE = Scope(("TSLA", "NVDA"), (date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)))
OHLC = CheckResult("raw_daily_bars", "raw_ohlc_consistent", "fail", False,
                   [{"symbol": "TSLA", "sessions": 1, "first_date": "2026-03-04",
                     "examples": ["TSLA 2026-03-04: high 10 < low 12"]}])
CLEAN = CheckResult("raw_daily_bars", "raw_ohlc_consistent", "fail", True, [])


def _write(dsn, run_key, results, scope=SCOPE):
    with connection(dsn) as conn:
        return write_verdicts(conn, run_key, scope, results, "raw.daily_bars")


def _latest(dsn, symbols, **kwargs):
    with connection(dsn) as conn:
        return latest_verdicts(conn, symbols, **kwargs)


def test_no_verdict_reads_as_fail_even_without_the_table(clean_db):
    assert sql(clean_db, "SELECT to_regclass('quality.symbol_verdicts')") == [(None,)]
    got = _latest(clean_db, ["TSLA", "NVDA"])
    assert {s: (v.verdict, v.reasons) for s, v in got.items()} == {
        "TSLA": ("fail", (NO_VERDICT,)), "NVDA": ("fail", (NO_VERDICT,))}
    assert not got["TSLA"].tradeable
    assert sql(clean_db, "SELECT to_regclass('quality.symbol_verdicts')") == [(None,)]  # reading creates nothing


def test_latest_verdict_per_symbol_and_unknown_symbols_fail(clean_db):
    written = _write(clean_db, "market_data_models/run_1", [OHLC])
    assert (written["TSLA"].verdict, written["NVDA"].verdict) == ("fail", "pass")
    got = _latest(clean_db, ["TSLA", "NVDA", "AAPL"])
    assert got["TSLA"].reasons == ("TSLA 2026-03-04: high 10 < low 12 [raw_ohlc_consistent]",)
    assert (got["TSLA"].run_key, got["TSLA"].range_start, got["TSLA"].range_end) == (
        "market_data_models/run_1", date(2026, 3, 2), date(2026, 3, 4))
    assert got["NVDA"].verdict == "pass" and got["NVDA"].tradeable
    assert (got["AAPL"].verdict, got["AAPL"].reasons) == ("fail", (NO_VERDICT,))

    _write(clean_db, "market_data_models/run_2", [CLEAN])  # the next run: TSLA fixed
    got = _latest(clean_db, ["TSLA"])
    assert (got["TSLA"].verdict, got["TSLA"].run_key) == ("pass", "market_data_models/run_2")
    assert sql(clean_db, "SELECT run_key, verdict, bars, failed_checks FROM quality.symbol_verdicts"
                         " WHERE symbol = 'TSLA' ORDER BY checked_at") == [
        ("market_data_models/run_1", "fail", 0, 1), ("market_data_models/run_2", "pass", 0, 0)]


def test_old_verdicts_fail_when_a_max_age_is_given(clean_db):
    _write(clean_db, "market_data_models/old", [CLEAN])
    sql(clean_db, "UPDATE quality.symbol_verdicts SET checked_at = now() - interval '3 days'")
    assert _latest(clean_db, ["NVDA"])["NVDA"].verdict == "pass"
    stale = _latest(clean_db, ["NVDA"], max_age=timedelta(days=1))["NVDA"]
    assert stale.verdict == "fail" and stale.reasons[0].startswith("latest data-quality verdict is older than 1 day")


def test_schema_setup_is_idempotent(clean_db):
    with connection(clean_db) as conn:
        ensure_schema(conn)
        ensure_schema(conn)
    _write(clean_db, "r", [OHLC])
    _write(clean_db, "r", [CLEAN])  # a retry of the same run overwrites its rows
    assert sql(clean_db, "SELECT symbol, verdict FROM quality.symbol_verdicts ORDER BY symbol") == [
        ("NVDA", "pass"), ("TSLA", "pass")]


# ------------------------------------------------------------------ session_verdicts: one session, the widest run
MON, TUE, WED, THU = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4), date(2026, 3, 5)
NARROW = Scope(("TSLA", "NVDA"), (WED,))


def _bars(dsn, symbols=("TSLA", "NVDA"), days=(MON, TUE, WED)):
    """Raw bars for the sessions (write_verdicts stores each symbol's latest bar with its verdict)."""
    for symbol in symbols:
        for day in days:
            sql(dsn, "INSERT INTO raw.daily_bars (symbol, conid, session_date, open, high, low, close, volume, source)"
                     " VALUES (%s, 1, %s, 10, 11, 9, 10.5, 1000, 'ibkr:test')", (symbol, day))


def _session(dsn, symbols, session):
    with connection(dsn) as conn:
        return session_verdicts(conn, symbols, session)


def test_no_verdict_for_the_session_fails_naming_the_latest_one(clean_db):
    got = _session(clean_db, ["TSLA"], WED)  # no table yet
    assert got["TSLA"].reasons == ("no data-quality verdict for session 2026-03-04 (latest verdict: none)",)
    assert sql(clean_db, "SELECT to_regclass('quality.symbol_verdicts')") == [(None,)]  # reading creates nothing

    _bars(clean_db)
    _write(clean_db, "market_data_models/wed", [CLEAN])
    assert {s: v.verdict for s, v in _session(clean_db, ["TSLA", "NVDA"], WED).items()} == {
        "TSLA": "pass", "NVDA": "pass"}

    # Ingestion stopped: Thursday's trading finds Wednesday's verdicts only.
    got = _session(clean_db, ["TSLA", "NVDA", "AAPL"], THU)
    assert {s: v.verdict for s, v in got.items()} == {"TSLA": "fail", "NVDA": "fail", "AAPL": "fail"}
    assert got["TSLA"].reasons == ("no data-quality verdict for session 2026-03-05 (latest verdict: 2026-03-04)",)
    assert got["AAPL"].reasons == ("no data-quality verdict for session 2026-03-05 (latest verdict: none)",)
    assert _latest(clean_db, ["TSLA"])["TSLA"].verdict == "pass"  # what the session-blind reader would trade on


def test_a_narrow_run_never_overrides_the_wide_run_of_the_session(clean_db):
    _bars(clean_db)
    _write(clean_db, "market_data_models/wide_1", [OHLC])  # 3 sessions: TSLA fails
    _write(clean_db, "manual/narrow", [CLEAN], scope=NARROW)  # later, 1 session: sees nothing wrong

    got = _session(clean_db, ["TSLA", "NVDA"], WED)
    assert (got["TSLA"].verdict, got["TSLA"].run_key, got["TSLA"].session) == (
        "fail", "market_data_models/wide_1", WED)
    assert got["TSLA"].reasons == ("TSLA 2026-03-04: high 10 < low 12 [raw_ohlc_consistent]",)
    assert got["TSLA"].as_dict()["session"] == "2026-03-04"
    assert (got["NVDA"].verdict, got["NVDA"].run_key) == ("pass", "market_data_models/wide_1")
    assert _latest(clean_db, ["TSLA"])["TSLA"].run_key == "manual/narrow"  # newest, yet not the session's verdict

    _write(clean_db, "market_data_models/wide_2", [CLEAN])  # the data fixed, the full run repeated
    _write(clean_db, "manual/narrow_2", [OHLC], scope=NARROW)  # a narrow fail does not override it either
    got = _session(clean_db, ["TSLA"], WED)["TSLA"]
    assert (got.verdict, got.reasons, got.run_key) == ("pass", (), "market_data_models/wide_2")


def test_a_verdict_without_a_bar_for_the_session_fails(clean_db):
    _bars(clean_db, ("NVDA",))
    _bars(clean_db, ("TSLA",), (MON, TUE))  # TSLA's Wednesday bar never arrived
    _write(clean_db, "market_data_models/wed", [CLEAN])

    got = _session(clean_db, ["TSLA", "NVDA"], WED)
    assert (got["TSLA"].verdict, got["TSLA"].last_session) == ("fail", TUE)
    assert got["TSLA"].reasons == ("latest bar 2026-03-03 is older than session 2026-03-04",)
    assert got["NVDA"].verdict == "pass"
    sql(clean_db, "DELETE FROM raw.daily_bars WHERE symbol = 'NVDA'")
    _write(clean_db, "market_data_models/wed", [CLEAN])  # the retry finds no bar at all
    assert _session(clean_db, ["NVDA"], WED)["NVDA"].reasons == ("no bar up to session 2026-03-04",)


def test_session_verdicts_leave_the_callers_transaction_open(clean_db):
    from psycopg2.extensions import TRANSACTION_STATUS_INTRANS

    _bars(clean_db)
    _write(clean_db, "r", [CLEAN])
    with connection(clean_db) as conn:
        with conn.cursor() as cur:
            cur.execute("UPDATE raw.daily_bars SET close = 99 WHERE symbol = 'TSLA'")
        assert session_verdicts(conn, ["TSLA"], WED)["TSLA"].verdict == "pass"
        assert conn.info.transaction_status == TRANSACTION_STATUS_INTRANS
        conn.rollback()
    assert sql(clean_db, "SELECT DISTINCT close FROM raw.daily_bars") == [(10.5,)]  # nothing was committed
    with connection(clean_db) as conn, pytest.raises(TypeError, match="session date"):
        session_verdicts(conn, ["TSLA"], datetime(2026, 3, 4, tzinfo=UTC))


def test_a_run_writes_only_the_symbols_it_checked(clean_db):
    _bars(clean_db)
    _write(clean_db, "market_data_models/all", [OHLC])  # TSLA fail, NVDA pass
    before = sql(clean_db, "SELECT run_key, symbol, verdict, checked_at FROM quality.symbol_verdicts ORDER BY 1, 2")

    # NVDA alone; the results even carry a TSLA finding and a check that could not run.
    broken = CheckResult("fct_daily_indicators", "mart_rsi_in_range", "fail", False, [], "relation missing")
    written = _write(clean_db, "manual/nvda", [CLEAN, OHLC, broken], scope=Scope(("NVDA",), SCOPE.sessions))

    assert list(written) == ["NVDA"] and written["NVDA"].verdict == "fail"
    after = sql(clean_db, "SELECT run_key, symbol, verdict, checked_at FROM quality.symbol_verdicts ORDER BY 1, 2")
    assert [r for r in after if r[0] != "manual/nvda"] == before  # TSLA's (and the old NVDA) rows untouched
    assert [(r[0], r[1]) for r in after if r[0] == "manual/nvda"] == [("manual/nvda", "NVDA")]
    got = _session(clean_db, ["TSLA", "NVDA"], WED)
    assert (got["TSLA"].verdict, got["TSLA"].run_key) == ("fail", "market_data_models/all")
    assert (got["NVDA"].verdict, got["NVDA"].run_key) == ("fail", "manual/nvda")  # same range: the newest


def test_real_runs_a_narrow_run_keeps_the_full_runs_fail_until_a_full_rerun(clean_db, simulator, load_bars,
                                                                            validate):
    load_bars(clean_db, simulator, symbols=("TSLA", "NVDA"), sessions=30)
    (day, high), *_ = sql(clean_db, "SELECT session_date, high FROM raw.daily_bars WHERE symbol = 'TSLA'"
                                    " ORDER BY session_date DESC OFFSET 9 LIMIT 1")
    sql(clean_db, "UPDATE raw.daily_bars SET high = low - 1 WHERE symbol = 'TSLA' AND session_date = %s", (day,))

    full = validate(include_mart=False, run_key="market_data_models/full_1")
    session = full.verdicts["TSLA"].session
    narrow = validate(symbols=["TSLA"], sessions=5, include_mart=False, run_key="manual/last_week")
    assert narrow.verdicts["TSLA"].verdict == "pass"  # the bad bar is older than its five sessions
    assert list(narrow.verdicts) == ["TSLA"]

    got = _session(clean_db, ["TSLA", "NVDA"], session)
    assert (got["TSLA"].verdict, got["TSLA"].run_key) == ("fail", "market_data_models/full_1")
    assert got["TSLA"].reasons[0].startswith(f"TSLA {day.isoformat()}: high ")
    assert (got["NVDA"].verdict, got["NVDA"].run_key) == ("pass", "market_data_models/full_1")

    sql(clean_db, "UPDATE raw.daily_bars SET high = %s WHERE symbol = 'TSLA' AND session_date = %s", (high, day))
    validate(include_mart=False, run_key="market_data_models/full_2")
    got = _session(clean_db, ["TSLA"], session)["TSLA"]
    assert (got.verdict, got.run_key) == ("pass", "market_data_models/full_2")
