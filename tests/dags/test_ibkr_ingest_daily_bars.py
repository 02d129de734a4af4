"""``ibkr_ingest_daily_bars`` end to end with ``dag.test()``: simulator -> Airflow -> PostgreSQL."""

from datetime import UTC, datetime

import httpx
import psycopg2
import pytest

from include.ibkr.client import IBKRClient
from include.marketdata.calendar import MarketCalendar

pytestmark = pytest.mark.airflow
DAG_ID = "ibkr_ingest_daily_bars"


def _output(capfd) -> str:
    """Task logs and tracebacks: dag.test() runs tasks in-process and logs through structlog to stderr."""
    out = capfd.readouterr()
    return out.out + out.err


def _rows(dsn, sql, args=()):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def test_loads_exchange_sessions_exactly_as_the_gateway_reports_them(run_dag, stack_env, simulator):
    state, tasks = run_dag(DAG_ID, {"symbols": ["TSLA", "NVDA"], "initial_history_sessions": 60})
    assert state == "success", tasks
    assert tasks["fetch_bars[TSLA]"] == tasks["fetch_bars[NVDA]"] == tasks["load_bars"] == "success"

    dsn = stack_env["MARKET_DB_URL"]
    cal = MarketCalendar()
    last = cal.last_completed_session(datetime.now(UTC))
    expected_sessions = cal.sessions_between(cal.sessions_back(last, 59), last)
    for symbol in ("TSLA", "NVDA"):
        got = _rows(dsn, "SELECT session_date FROM raw.daily_bars WHERE symbol=%s ORDER BY 1", (symbol,))
        assert [d for (d,) in got] == expected_sessions  # every session once: no gaps, no holidays
    with IBKRClient(simulator.base_url, rate_per_sec=None) as client:
        client.ensure_session()
        direct = client.daily_bars(client.resolve_contract("TSLA"), expected_sessions[0], last)
    stored = _rows(dsn, "SELECT symbol, conid, session_date, open, high, low, close, volume FROM raw.daily_bars"
                        " WHERE symbol='TSLA' ORDER BY session_date")
    assert [tuple(b) for b in direct] == stored  # exact values, volume in shares
    assert _rows(dsn, "SELECT DISTINCT source FROM raw.daily_bars") == [("ibkr:IBKR-SIM",)]
    assert _rows(dsn, "SELECT count(*) FROM staging.daily_bars") == [(0,)]


def test_rerun_is_idempotent_and_rewrites_nothing(run_dag, stack_env):
    conf = {"symbols": ["TSLA"], "initial_history_sessions": 30}
    assert run_dag(DAG_ID, conf)[0] == "success"
    dsn = stack_env["MARKET_DB_URL"]
    before = _rows(dsn, "SELECT session_date, xmin::text FROM raw.daily_bars ORDER BY 1")
    assert run_dag(DAG_ID, conf)[0] == "success"
    assert _rows(dsn, "SELECT session_date, xmin::text FROM raw.daily_bars ORDER BY 1") == before
    (received, inserted, updated, unchanged), = _rows(
        dsn, "SELECT rows_received, rows_inserted, rows_updated, rows_unchanged FROM raw.load_audit"
             " ORDER BY load_id DESC LIMIT 1")
    assert (inserted, updated) == (0, 0) and unchanged == received == 6  # last loaded session + 5 overlap


def test_unknown_symbol_fails_by_name_and_loads_nothing(run_dag, stack_env, capfd):
    state, tasks = run_dag(DAG_ID, {"symbols": ["TSLA", "ZZZZQ"], "initial_history_sessions": 20})
    assert state == "failed"
    assert tasks["fetch_bars[ZZZZQ]"] == "failed" and tasks["fetch_bars[TSLA]"] == "success"
    assert tasks["load_bars"] == "upstream_failed"
    assert "ZZZZQ" in (log := _output(capfd)) and "UnknownSymbolError" in log
    assert _rows(stack_env["MARKET_DB_URL"], "SELECT count(*) FROM raw.daily_bars") == [(0,)]


@pytest.mark.parametrize(
    ("bar", "reason"),
    [({"o": -5.0, "h": 10.0, "l": 4.0, "c": 6.0, "v": 100}, "TSLA"),
     ({"o": 5.0, "h": 4.0, "l": 6.0, "c": 5.0, "v": 100}, "high"),
     ({"o": "abc", "h": 10.0, "l": 4.0, "c": 6.0, "v": 100}, "TSLA")],
    ids=["negative-price", "high-below-low", "non-numeric"],
)
def test_malformed_bar_fails_naming_symbol_and_date_then_rerun_succeeds(run_dag, stack_env, simulator, capfd,
                                                                        bar, reason):
    cal = MarketCalendar()
    day = cal.previous_session(cal.last_completed_session(datetime.now(UTC)))
    httpx.post(f"{simulator.admin_url}/bars",
               json={"symbol": "TSLA", "bars": [{"date": day.isoformat(), **bar}]}).raise_for_status()
    conf = {"symbols": ["NVDA", "TSLA"], "initial_history_sessions": 20}
    state, tasks = run_dag(DAG_ID, conf)
    assert state == "failed" and tasks["fetch_bars[TSLA]"] == "failed"
    log = _output(capfd)
    assert "InvalidBarError" in log and day.isoformat() in log and reason in log
    assert _rows(stack_env["MARKET_DB_URL"], "SELECT count(*) FROM raw.daily_bars") == [(0,)]  # NVDA neither

    httpx.post(f"{simulator.admin_url}/reset").raise_for_status()  # the gateway serves clean data again
    assert run_dag(DAG_ID, conf)[0] == "success"
    assert _rows(stack_env["MARKET_DB_URL"], "SELECT count(DISTINCT symbol) FROM raw.daily_bars") == [(2,)]


def test_persistent_gateway_errors_fail_the_task_with_the_reason(run_dag, stack_env, simulator, capfd):
    httpx.post(f"{simulator.admin_url}/faults",
               json={"path": "/iserver/marketdata/history", "status": 503, "times": -1}).raise_for_status()
    state, tasks = run_dag(DAG_ID, {"symbols": ["TSLA"], "initial_history_sessions": 10})
    assert state == "failed" and tasks["fetch_bars[TSLA]"] == "failed"
    log = _output(capfd)
    assert "GatewayServerError" in log and "503" in log
    assert _rows(stack_env["MARKET_DB_URL"], "SELECT count(*) FROM raw.daily_bars") == [(0,)]


def test_logged_out_gateway_is_an_error_not_a_fallback(run_dag, stack_env, simulator, capfd):
    httpx.post(f"{simulator.admin_url}/session", json={"state": "logged_out"}).raise_for_status()
    state, _tasks = run_dag(DAG_ID, {"symbols": ["TSLA"], "initial_history_sessions": 10})
    assert state == "failed"
    assert "NotAuthenticatedError" in _output(capfd)
    assert _rows(stack_env["MARKET_DB_URL"], "SELECT count(*) FROM raw.daily_bars") == [(0,)]
