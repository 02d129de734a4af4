"""``ibkr_ingest_daily_bars`` end to end with ``dag.test()``: simulator -> Airflow -> PostgreSQL."""

from datetime import UTC, datetime

import httpx
import psycopg2
import pytest

from include.ibkr.client import IBKRClient
from include.marketdata.calendar import MarketCalendar
from tests.conftest import rendered_task_ids

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


def test_loads_exchange_sessions_exactly_as_the_gateway_reports_them(run_dag, stack_env, simulator, capfd):
    state, tasks = run_dag(DAG_ID, {"symbols": ["TSLA", "NVDA"], "initial_history_sessions": 60})
    assert state == "success", tasks
    assert tasks["fetch_bars[TSLA]"] == tasks["fetch_bars[NVDA]"] == tasks["load_bars"] == "success"
    # load_bars takes one summary per symbol: not stored again as its rendered fields, and its log has one line of
    # what it loaded, not its whole output (step_task; for 500 symbols that was a ~40 KB line)
    rendered = rendered_task_ids(DAG_ID, run_dag.last_run_id)
    assert "resolve_symbols" in rendered and "load_bars" not in rendered, rendered
    log = _output(capfd)
    assert any(f"returned loaded 2: {pair}; failed 0" in log for pair in ("TSLA, NVDA", "NVDA, TSLA")), log[-3000:]
    assert "Returned value was: {'loaded': {" not in log  # check_symbols's output (a list of symbols) is logged

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


def _alerts(dsn):
    return _rows(dsn, "SELECT event, severity, summary, details FROM ops.alerts ORDER BY id")


def test_unknown_symbol_fails_alone_the_others_load_and_one_alert_names_it(run_dag, stack_env, capfd):
    state, tasks = run_dag(DAG_ID, {"symbols": ["TSLA", "ZZZZQ", "NVDA"], "initial_history_sessions": 20})
    assert state == "failed"
    assert tasks["fetch_bars[ZZZZQ]"] == "failed" and tasks["fetch_bars[TSLA]"] == tasks["fetch_bars[NVDA]"] \
        == "success"
    assert (tasks["load_bars"], tasks["check_symbols"]) == ("success", "failed")
    assert "ZZZZQ" in (log := _output(capfd)) and "UnknownSymbolError" in log and "not retried" in log
    dsn = stack_env["MARKET_DB_URL"]
    assert _rows(dsn, "SELECT symbol, count(*) FROM raw.daily_bars GROUP BY 1 ORDER BY 1") == [("NVDA", 20),
                                                                                                ("TSLA", 20)]
    (event, severity, summary, details), = _alerts(dsn)  # one alert for the run, no per-task failure alert
    assert (event, severity) == ("symbols_not_loaded", "error")
    assert "ZZZZQ (UnknownSymbolError" in summary and "loaded: NVDA, TSLA" in summary
    assert list(details["failed"]) == ["ZZZZQ"] and details["loaded"] == ["NVDA", "TSLA"]


def test_an_unknown_symbol_is_not_retried():
    """The DAG's retries (2, backoff from 1 min) are for gateway faults: UnknownSymbolError fails at once."""
    from airflow.sdk.exceptions import AirflowFailException

    from include.ibkr.errors import GatewayServerError, UnknownSymbolError
    from include.marketdata.tasks import symbol_failure

    class _TI:
        pushed: dict = {}

        def xcom_push(self, key, value):
            self.pushed[key] = value

    ti = _TI()
    error = symbol_failure({"ti": ti}, ["ZZZZQ"], UnknownSymbolError("ZZZZQ", "no hit"))
    assert isinstance(error, AirflowFailException) and error.alerted  # no retry; check_symbols alerts
    assert "ZZZZQ" in ti.pushed["symbol_errors"]["ZZZZQ"]
    transient = GatewayServerError("503", status_code=503)
    assert symbol_failure({"ti": ti}, ["TSLA"], transient) is transient  # retried by Airflow


def test_on_symbol_error_warn_lets_the_run_succeed_with_a_warning_alert(run_dag, stack_env):
    state, tasks = run_dag(DAG_ID, {"symbols": ["ZZZZQ", "TSLA"], "initial_history_sessions": 10,
                                    "on_symbol_error": "warn"})
    assert state == "success", tasks
    assert (tasks["fetch_bars[ZZZZQ]"], tasks["check_symbols"]) == ("failed", "success")
    dsn = stack_env["MARKET_DB_URL"]
    assert _rows(dsn, "SELECT DISTINCT symbol FROM raw.daily_bars") == [("TSLA",)]
    assert [(e, sev) for e, sev, *_ in _alerts(dsn)] == [("symbols_not_loaded", "warning")]


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
    conf = {"symbols": ["NVDA", "TSLA"], "initial_history_sessions": 20, "on_symbol_error": "fail"}
    state, tasks = run_dag(DAG_ID, conf)
    assert state == "failed" and tasks["fetch_bars[TSLA]"] == "failed" and tasks["load_bars"] == "success"
    log = _output(capfd)
    assert "InvalidBarError" in log and day.isoformat() in log and reason in log
    dsn = stack_env["MARKET_DB_URL"]
    assert _rows(dsn, "SELECT DISTINCT symbol FROM raw.daily_bars") == [("NVDA",)]  # NVDA loaded, TSLA not

    httpx.post(f"{simulator.admin_url}/reset").raise_for_status()  # the gateway serves clean data again
    assert run_dag(DAG_ID, conf)[0] == "success"
    assert _rows(dsn, "SELECT count(DISTINCT symbol) FROM raw.daily_bars") == [(2,)]


def test_persistent_gateway_errors_fail_the_task_with_the_reason(run_dag, stack_env, simulator, capfd):
    httpx.post(f"{simulator.admin_url}/faults",
               json={"path": "/iserver/marketdata/history", "status": 503, "times": -1}).raise_for_status()
    state, tasks = run_dag(DAG_ID, {"symbols": ["TSLA"], "initial_history_sessions": 10})
    assert state == "failed" and tasks["fetch_bars[TSLA]"] == "failed"
    assert (tasks["load_bars"], tasks["check_symbols"]) == ("upstream_failed", "failed")
    log = _output(capfd)
    assert "GatewayServerError" in log and "503" in log
    assert _rows(stack_env["MARKET_DB_URL"], "SELECT count(*) FROM raw.daily_bars") == [(0,)]
    (_, _, summary, _), = _alerts(stack_env["MARKET_DB_URL"])
    assert "TSLA (GatewayServerError" in summary


def test_logged_out_gateway_is_an_error_not_a_fallback(run_dag, stack_env, simulator, capfd):
    httpx.post(f"{simulator.admin_url}/session", json={"state": "logged_out"}).raise_for_status()
    state, _tasks = run_dag(DAG_ID, {"symbols": ["TSLA"], "initial_history_sessions": 10})
    assert state == "failed"
    assert "NotAuthenticatedError" in _output(capfd)
    assert _rows(stack_env["MARKET_DB_URL"], "SELECT count(*) FROM raw.daily_bars") == [(0,)]
