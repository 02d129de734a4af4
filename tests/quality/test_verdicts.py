"""``quality.symbol_verdicts``: idempotent DDL, upserts per run key, and ``latest_verdicts`` for trading."""

from datetime import date, timedelta

from include.marketdata.db import connection
from include.quality.checks import Scope
from include.quality.gx_run import CheckResult
from include.quality.verdicts import NO_VERDICT, ensure_schema, latest_verdicts, write_verdicts
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
