"""Ingestion steps against PostgreSQL and the simulator: per-symbol loads and isolated symbol failures."""

from datetime import UTC, date, datetime, timedelta

import httpx
import psycopg2
import pytest

from include.ibkr.client import IBKRClient
from include.ibkr.errors import GatewayServerError, InvalidBarError, NoDataError, UnknownSymbolError
from include.ibkr.models import Bar
from include.marketdata import db, ingest, loaders


def _rows(dsn, sql, args=()):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def _stage(dsn, run, symbol, n):
    bars = [Bar(symbol, 1, date(2024, 1, 1) + timedelta(days=i), 10.0, 11.0, 9.0, 10.5, 100.0) for i in range(n)]
    with db.connection(dsn) as conn:
        loaders.stage_bars(conn, run, symbol, bars, "ibkr:test")


def test_symbols_load_each_in_its_own_transaction(clean_db):
    _stage(clean_db, "r1", "TSLA", 3)
    _stage(clean_db, "r1", "NVDA", 2)
    results, failed = ingest.load_staged_symbols(clean_db, "r1", ["TSLA", "AAPL", "NVDA"])
    assert {r.symbol: r.inserted for r in results} == {"TSLA": 3, "NVDA": 2}
    assert list(failed) == ["AAPL"] and "no staged bars for AAPL" in failed["AAPL"]
    assert _rows(clean_db, "SELECT symbol, count(*) FROM raw.load_audit GROUP BY 1 ORDER BY 1") == [("NVDA", 1),
                                                                                                   ("TSLA", 1)]
    assert _rows(clean_db, "SELECT count(*) FROM staging.daily_bars") == [(0,)]


def test_a_symbol_whose_load_fails_rolls_back_alone(clean_db):
    _stage(clean_db, "r1", "TSLA", 3)
    _stage(clean_db, "r1", "NVDA", 2)
    with psycopg2.connect(clean_db) as conn, conn.cursor() as cur:  # a row the upsert cannot take for NVDA only
        cur.execute("ALTER TABLE raw.daily_bars ADD CONSTRAINT not_nvda CHECK (symbol <> 'NVDA')")
    try:
        results, failed = ingest.load_staged_symbols(clean_db, "r1", ["NVDA", "TSLA"])
    finally:
        with psycopg2.connect(clean_db) as conn, conn.cursor() as cur:
            cur.execute("ALTER TABLE raw.daily_bars DROP CONSTRAINT not_nvda")
    assert [r.symbol for r in results] == ["TSLA"] and "CheckViolation" in failed["NVDA"]
    assert _rows(clean_db, "SELECT DISTINCT symbol FROM raw.daily_bars") == [("TSLA",)]
    assert _rows(clean_db, "SELECT symbol, count(*) FROM staging.daily_bars GROUP BY 1") == [("NVDA", 2)]  # kept


@pytest.mark.parametrize(("error", "permanent"), [
    (UnknownSymbolError("ZZZZQ"), True), (InvalidBarError("TSLA", None, "high < low"), True),
    (NoDataError(), True), (ValueError("non-finite"), True),
    (GatewayServerError(status_code=503), False), (httpx.ConnectError("refused"), False),
])
def test_permanent_symbol_errors_are_told_from_gateway_faults(error, permanent):
    assert ingest.is_permanent(error) is permanent


def test_snapshots_isolate_an_unknown_symbol_only_when_asked(clean_db, simulator):
    with IBKRClient(simulator.base_url) as client:
        client.ensure_session()
        with pytest.raises(UnknownSymbolError):
            ingest.ingest_snapshots(client, clean_db, ["TSLA", "ZZZZQ"], "r0")
        summary = ingest.ingest_snapshots(client, clean_db, ["TSLA", "ZZZZQ", "NVDA"], "r1", isolate=True)
    assert summary["symbols"] == ["TSLA", "NVDA"] and summary["inserted"] == 2
    assert list(summary["failed"]) == ["ZZZZQ"] and summary["failed"]["ZZZZQ"].startswith("UnknownSymbolError")


def test_a_symbol_loaded_before_takes_its_conid_from_raw_contracts(clean_db, simulator):
    """Each daily fetch task opens a new client: the conid of a symbol loaded before comes from raw.contracts, not
    from a gateway search per symbol and run (IBKR's pacing counts every request); one stored longer ago than
    CONTRACT_MAX_AGE_DAYS is looked up again."""
    from include.marketdata.calendar import MarketCalendar

    calendar = MarketCalendar()
    session = calendar.last_completed_session(calendar.next_open(datetime.now(UTC)) - timedelta(days=3))

    def fetch(run: str) -> ingest.StagedBars:
        with IBKRClient(simulator.base_url) as client:  # a new client per task, as under Airflow
            client.ensure_session(prime=False)
            return ingest.fetch_and_stage_bars(client, clean_db, "TSLA", session, run, calendar=calendar,
                                               initial_sessions=30, overlap_sessions=3, direct_first_load=True)

    def searches() -> int:
        return httpx.get(f"{simulator.admin_url}/stats").json()["by_path"].get("/iserver/secdef/search", 0)

    first = fetch("r1")
    assert first.loaded and searches() == 1
    again = fetch("r2")
    assert again.conid == first.conid and again.rows > 0 and searches() == 1  # staged, no second search
    with psycopg2.connect(clean_db) as conn, conn.cursor() as cur:
        cur.execute("UPDATE raw.contracts SET resolved_at = now() - interval '31 days' WHERE symbol = 'TSLA'")
    assert fetch("r3").conid == first.conid and searches() == 2
