"""``ibkr_ingest_snapshots`` end to end with ``dag.test()`` against the simulator."""

import httpx
import psycopg2
import pytest

pytestmark = pytest.mark.airflow
DAG_ID = "ibkr_ingest_snapshots"


def _rows(dsn, sql, args=()):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def _set_clock(simulator, now):
    httpx.post(f"{simulator.admin_url}/clock", json={"now": now}).raise_for_status()


def test_snapshots_in_session_are_stored_once(run_dag, stack_env, simulator):
    _set_clock(simulator, "2025-01-10T15:00:00Z")  # a Friday, mid-session
    state, tasks = run_dag(DAG_ID, {"symbols": ["TSLA", "NVDA"]})
    assert state == "success", tasks
    dsn = stack_env["MARKET_DB_URL"]
    rows = _rows(dsn, "SELECT symbol, captured_at, last, bid, ask, volume, last_price_type, source"
                      " FROM raw.market_snapshots ORDER BY symbol")
    assert [r[0] for r in rows] == ["NVDA", "TSLA"]
    for _symbol, captured_at, last, bid, ask, volume, kind, source in rows:
        assert captured_at.isoformat() == "2025-01-10T15:00:00+00:00"
        assert bid < last < ask or bid <= last <= ask
        assert volume > 0 and kind == "last" and source == "ibkr:IBKR-SIM"

    # Same gateway update time -> a retry or overlapping run adds nothing.
    assert run_dag(DAG_ID, {"symbols": ["TSLA", "NVDA"]})[0] == "success"
    assert _rows(dsn, "SELECT count(*) FROM raw.market_snapshots") == [(2,)]
    assert _rows(dsn, "SELECT rows_received, rows_inserted FROM raw.load_audit ORDER BY load_id DESC LIMIT 1") \
        == [(1, 0)]


def test_closed_market_snapshot_is_marked_as_previous_close(run_dag, stack_env, simulator):
    _set_clock(simulator, "2025-01-11T15:00:00Z")  # Saturday: the gateway prefixes last with "C"
    assert run_dag(DAG_ID, {"symbols": ["TSLA"]})[0] == "success"
    assert _rows(stack_env["MARKET_DB_URL"], "SELECT last_price_type FROM raw.market_snapshots") == [("close",)]


def test_unknown_symbol_is_left_out_and_named_the_others_are_stored(run_dag, stack_env, simulator):
    _set_clock(simulator, "2025-01-10T15:00:00Z")
    state, tasks = run_dag(DAG_ID, {"symbols": ["TSLA", "ZZZZQ", "NVDA"]})
    assert state == "failed"
    assert (tasks["fetch_snapshots"], tasks["check_symbols"]) == ("success", "failed")
    dsn = stack_env["MARKET_DB_URL"]
    assert _rows(dsn, "SELECT symbol FROM raw.market_snapshots ORDER BY 1") == [("NVDA",), ("TSLA",)]
    (event, summary), = _rows(dsn, "SELECT event, summary FROM ops.alerts")
    assert event == "symbols_not_loaded" and "ZZZZQ (UnknownSymbolError" in summary

    state, tasks = run_dag(DAG_ID, {"symbols": ["ZZZZQ"], "on_symbol_error": "warn"})
    assert (tasks["fetch_snapshots"], tasks["check_symbols"]) == ("failed", "success")  # nothing stored, no event
    assert state == "success"
