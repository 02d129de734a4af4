"""Check definitions and verdict rules without a database: scopes, relation names, severities, reasons."""

from datetime import date

import pytest

from include.quality.checks import Scope, relation
from include.quality.gx_run import CheckResult, tcp_url
from include.quality.mart_checks import mart_checks
from include.quality.raw_checks import raw_checks
from include.quality.verdicts import decide
from include.settings import Settings, SettingsError

SCOPE = Scope(("TSLA", "O'NEIL"), (date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)))


def test_every_check_queries_the_batch_and_has_a_unique_name():
    checks = raw_checks(SCOPE) + mart_checks(SCOPE)
    assert len({c.name for c in checks}) == len(checks)
    for check in checks:
        assert "{batch} AS " in check.query, check.name  # GX substitutes the batch; the query aliases it
        assert check.severity in ("fail", "warn")
        assert "'O''NEIL'" in check.query  # symbols are quoted, not pasted


def test_only_staleness_and_warm_up_warn():
    checks = raw_checks(SCOPE) + mart_checks(SCOPE)
    assert sorted(c.name for c in checks if c.severity == "warn") == ["mart_warmup_complete", "raw_fresh"]


def test_scope_and_relation_validation():
    assert (SCOPE.start, SCOPE.end) == (date(2026, 3, 2), date(2026, 3, 4))
    with pytest.raises(ValueError):
        Scope(("TSLA",), ())
    with pytest.raises(ValueError):
        Scope(("TSLA",), (date(2026, 3, 3), date(2026, 3, 2)))
    assert relation("raw.daily_bars") == "raw.daily_bars"
    for bad in ("daily_bars", "raw.daily_bars; DROP TABLE x", 'raw."Bars"'):
        with pytest.raises(ValueError):
            relation(bad)


def test_gx_gets_a_tcp_url_never_a_unix_socket():
    assert tcp_url("postgres://u:p@127.0.0.1:5432/market") == "postgresql://u:p@127.0.0.1:5432/market"
    for socket in ("postgresql:///market", "postgresql://u@%2Ftmp/market", "postgresql:///market?host=/tmp"):
        with pytest.raises(ValueError, match="TCP"):
            tcp_url(socket)


def test_decide_per_symbol_fail_beats_warn_and_symbols_stay_independent():
    row = {"symbol": "TSLA", "sessions": 5, "first_date": "2026-03-02",
           "examples": ["TSLA 2026-03-02: high 10 < low 12"]}
    results = [
        CheckResult("raw", "raw_ohlc_consistent", "fail", False, [row]),
        CheckResult("raw", "raw_fresh", "warn", False, [
            {**row, "sessions": 1, "examples": ["TSLA: stale"]},
            {"symbol": "NVDA", "sessions": 1, "examples": ["NVDA: stale"]},
        ]),
        CheckResult("mart", "mart_keys_not_null", "fail", False, [
            {"symbol": None, "sessions": 1, "examples": ["x"]},
        ]),
        CheckResult("raw", "raw_prices_positive", "fail", True, []),
    ]
    got = decide(["TSLA", "NVDA", "AAPL"], results)
    assert got["TSLA"].verdict == "fail"
    assert got["TSLA"].reasons == ("TSLA 2026-03-02: high 10 < low 12; and 4 more session(s) [raw_ohlc_consistent]",
                                   "TSLA: stale [raw_fresh]")
    assert (got["TSLA"].failed_checks, got["TSLA"].warned_checks) == (1, 1)
    assert (got["NVDA"].verdict, got["NVDA"].reasons) == ("warn", ("NVDA: stale [raw_fresh]",))
    assert (got["AAPL"].verdict, got["AAPL"].reasons) == ("pass", ())  # the unattributable NULL key fails no one


def test_a_check_that_could_not_run_fails_every_symbol():
    results = [CheckResult("mart", "mart_rsi_in_range", "fail", False, [], 'column "rsi_14" does not exist')]
    got = decide(["TSLA", "NVDA"], results)
    assert {s: d.verdict for s, d in got.items()} == {"TSLA": "fail", "NVDA": "fail"}
    assert got["NVDA"].reasons == ('check mart_rsi_in_range could not run: column "rsi_14" does not exist',)


def test_the_daily_move_limit_is_a_setting_and_must_be_positive():
    assert Settings.from_env({}).quality_max_daily_move == 0.4
    assert Settings.from_env({"QUALITY_MAX_DAILY_MOVE": "0.75"}).quality_max_daily_move == 0.75
    with pytest.raises(SettingsError, match="QUALITY_MAX_DAILY_MOVE"):
        Settings.from_env({"QUALITY_MAX_DAILY_MOVE": "40%"})
    (jump,) = [c for c in raw_checks(SCOPE, max_daily_move=0.75) if c.name == "raw_no_price_jump"]
    assert "> 0.75" in jump.query and "75%" in jump.description
    for bad in (0, -0.4, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="max_daily_move"):
            raw_checks(SCOPE, max_daily_move=bad)
