"""Ingestion steps against PostgreSQL and the simulator: per-symbol loads and isolated symbol failures."""

from datetime import date, timedelta

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
