"""Loaders against a real PostgreSQL: COPY + upsert, idempotent re-runs, all-or-nothing batches."""

from datetime import date, timedelta

import psycopg2
import pytest

from include.ibkr.models import Bar
from include.ibkr.parsing import BarColumns
from include.marketdata import db, loaders


def _bars(symbol: str, start: date, n: int, conid: int = 1, bump: float = 0.0) -> list[Bar]:
    out = []
    for i in range(n):
        px = 100.0 + i + bump
        out.append(
            Bar(symbol, conid, start + timedelta(days=i), px, px + 2, px - 1, px + 0.5, 1_000_000.0 + i)
        )
    return out


def _rows(dsn: str, sql: str, args=()):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def _load(dsn: str, run: str, batches: dict[str, list[Bar]]) -> dict[str, loaders.LoadResult]:
    with db.connection(dsn) as conn:
        for symbol, bars in batches.items():
            loaders.stage_bars(conn, run, symbol, bars, "ibkr:test")
        return {r.symbol: r for r in loaders.upsert_staged_bars(conn, run, list(batches))}


def test_first_load_inserts_everything_exactly(clean_db):
    res = _load(
        clean_db,
        "r1",
        {"TSLA": _bars("TSLA", date(2024, 1, 1), 30), "NVDA": _bars("NVDA", date(2024, 1, 1), 10)},
    )
    assert (res["TSLA"].inserted, res["TSLA"].updated, res["TSLA"].unchanged) == (30, 0, 0)
    assert res["NVDA"].inserted == 10
    ((o, h, lo, c, v, src, run),) = _rows(
        clean_db,
        "SELECT open, high, low, close, volume, source, run_id FROM raw.daily_bars"
        " WHERE symbol='TSLA' AND session_date='2024-01-03'",
    )
    assert (o, h, lo, c, v) == (102.0, 104.0, 101.0, 102.5, 1_000_002.0)
    assert (src, run) == ("ibkr:test", "r1")
    assert _rows(clean_db, "SELECT count(*) FROM staging.daily_bars") == [(0,)]


def test_rerun_with_same_data_rewrites_nothing(clean_db):
    bars = {"TSLA": _bars("TSLA", date(2024, 1, 1), 20)}
    _load(clean_db, "r1", bars)
    before = _rows(clean_db, "SELECT session_date, xmin::text, loaded_at FROM raw.daily_bars ORDER BY 1")
    res = _load(clean_db, "r2", bars)
    assert (res["TSLA"].inserted, res["TSLA"].updated, res["TSLA"].unchanged) == (0, 0, 20)
    after = _rows(clean_db, "SELECT session_date, xmin::text, loaded_at FROM raw.daily_bars ORDER BY 1")
    assert before == after  # same tuple versions: unchanged rows were not rewritten


def test_corrected_bars_are_updated_and_new_ones_inserted(clean_db):
    _load(clean_db, "r1", {"TSLA": _bars("TSLA", date(2024, 1, 1), 10)})
    corrected = _bars("TSLA", date(2024, 1, 1), 12)
    corrected[3] = corrected[3]._replace(close=999.0, high=1001.0)
    res = _load(clean_db, "r2", {"TSLA": corrected})["TSLA"]
    assert (res.inserted, res.updated, res.unchanged) == (2, 1, 9)
    assert _rows(clean_db, "SELECT close, run_id FROM raw.daily_bars WHERE session_date='2024-01-04'") == [
        (999.0, "r2")
    ]


def test_batch_missing_a_symbol_loads_nothing(clean_db):
    with db.connection(clean_db) as conn:
        loaders.stage_bars(conn, "r1", "TSLA", _bars("TSLA", date(2024, 1, 1), 5), "ibkr:test")
        with pytest.raises(RuntimeError, match=r"no staged bars for \['NVDA'\]"):
            loaders.upsert_staged_bars(conn, "r1", ["TSLA", "NVDA"])
    assert _rows(clean_db, "SELECT count(*) FROM raw.daily_bars") == [(0,)]
    assert _rows(clean_db, "SELECT count(*) FROM staging.daily_bars WHERE run_id='r1'") == [
        (5,)
    ]  # kept for retry


def test_restaging_a_symbol_replaces_its_rows(clean_db):
    with db.connection(clean_db) as conn:
        loaders.stage_bars(conn, "r1", "TSLA", _bars("TSLA", date(2024, 1, 1), 5), "ibkr:test")
        loaders.stage_bars(conn, "r1", "TSLA", _bars("TSLA", date(2024, 1, 1), 3, bump=1), "ibkr:test")
        res = loaders.upsert_staged_bars(conn, "r1", ["TSLA"])
    assert res[0].received == 3
    assert _rows(clean_db, "SELECT min(open) FROM raw.daily_bars") == [(101.0,)]


def test_non_finite_values_never_reach_the_database(clean_db):
    bad = _bars("TSLA", date(2024, 1, 1), 3)
    bad[1] = bad[1]._replace(close=float("nan"))
    with db.connection(clean_db) as conn, pytest.raises(ValueError, match="non-finite"):
        loaders.stage_bars(conn, "r1", "TSLA", bad, "ibkr:test")
    assert _rows(clean_db, "SELECT count(*) FROM staging.daily_bars") == [(0,)]


def test_stage_refuses_bars_of_another_symbol(clean_db):
    with db.connection(clean_db) as conn, pytest.raises(ValueError, match="other symbols"):
        loaders.stage_bars(conn, "r1", "TSLA", _bars("NVDA", date(2024, 1, 1), 2), "ibkr:test")


def test_audit_and_latest_sessions(clean_db):
    _load(clean_db, "r1", {"TSLA": _bars("TSLA", date(2024, 1, 1), 4)})
    with db.connection(clean_db) as conn:
        assert loaders.latest_sessions(conn, ["TSLA", "NVDA"]) == {"TSLA": date(2024, 1, 4)}
    assert _rows(clean_db, "SELECT symbol, rows_received, rows_inserted FROM raw.load_audit") == [
        ("TSLA", 4, 4)
    ]


def test_schema_setup_is_idempotent(clean_db):
    with db.connection(clean_db) as conn:
        db.ensure_schema(conn)
        db.ensure_schema(conn)


def test_a_dropped_index_is_recreated(clean_db):
    index = "SELECT to_regclass('raw.daily_bars_loaded_at_idx') IS NOT NULL"
    with psycopg2.connect(clean_db) as conn, conn.cursor() as cur:
        cur.execute("DROP INDEX raw.daily_bars_loaded_at_idx")
    assert _rows(clean_db, index) == [(False,)]
    with db.connection(clean_db) as conn:
        db.ensure_schema(conn)
    assert _rows(clean_db, index) == [(True,)]


# ------------------------------------------------------------------ snapshots: quote_at
def test_snapshot_quote_time_is_stored_and_null_without_update_time(clean_db):
    from datetime import UTC, datetime

    from include.ibkr.parsing import parse_snapshot

    received = datetime(2025, 1, 10, 15, 4, 30, tzinfo=UTC)
    payload = [
        {"conid": 1, "_updated": 1736521200000, "31": "101.5", "84": "101.4", "86": "101.6"},  # 15:00:00Z
        {"conid": 2, "31": "C55.0"},  # no "_updated": the gateway did not say how old this quote is
    ]
    snapshots = parse_snapshot(payload, {1: "TSLA", 2: "NVDA"}, received_at=received)
    with db.connection(clean_db) as conn:
        assert loaders.load_snapshots(conn, snapshots, "r1", "ibkr:test") == 2
        assert loaders.load_snapshots(conn, snapshots, "r2", "ibkr:test") == 0  # same keys: deduplicated
    assert _rows(clean_db, "SELECT symbol, captured_at, quote_at, last, last_price_type FROM raw.market_snapshots"
                           " ORDER BY symbol") == [
        ("NVDA", received, None, 55.0, "close"),
        ("TSLA", datetime(2025, 1, 10, 15, tzinfo=UTC), datetime(2025, 1, 10, 15, tzinfo=UTC), 101.5, "last"),
    ]


def test_snapshot_ingestion_from_the_simulator_stores_the_quote_time(clean_db, simulator):
    from include.ibkr.client import IBKRClient
    from include.marketdata.ingest import ingest_snapshots

    with IBKRClient(simulator.base_url) as client:
        client.ensure_session()
        summary = ingest_snapshots(client, clean_db, ["TSLA", "NVDA"], "r1")
    assert summary["inserted"] == 2 and summary["without_quote_time"] == []
    rows = _rows(clean_db, "SELECT symbol, quote_at, captured_at FROM raw.market_snapshots ORDER BY symbol")
    assert [r[0] for r in rows] == ["NVDA", "TSLA"]
    assert all(quote_at is not None and quote_at == captured_at for _, quote_at, captured_at in rows)


def test_schema_setup_adds_quote_at_to_an_existing_snapshot_table(clean_db):
    column = ("SELECT data_type, is_nullable FROM information_schema.columns"
              " WHERE table_schema = 'raw' AND table_name = 'market_snapshots' AND column_name = 'quote_at'")
    with psycopg2.connect(clean_db) as conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE raw.market_snapshots DROP COLUMN quote_at")  # a table from before the column
    assert _rows(clean_db, column) == []
    with db.connection(clean_db) as conn:
        db.ensure_schema(conn)
        db.ensure_schema(conn)
    assert _rows(clean_db, column) == [("timestamp with time zone", "YES")]


def _columns(symbol: str, start: date, n: int, **kw) -> BarColumns:
    return BarColumns.from_bars(symbol, 1, _bars(symbol, start, n, **kw))


def test_first_load_copies_straight_into_the_table_once(clean_db):
    cols = [_columns("TSLA", date(2024, 3, 1), 20), _columns("TSLA", date(2024, 1, 1), 30)]  # windows newest first
    with db.connection(clean_db) as conn:
        db.ensure_schema(conn)
        result, copied = loaders.load_first_bar_columns(conn, "r1", "TSLA", iter(cols), "ibkr:test")
        assert (result.received, result.inserted, copied.rows) == (50, 50, 50)
        assert (copied.first_day, copied.last_day) == (19723, 19723 + 79)  # 2024-01-01 .. 2024-03-20

        def untouched():
            raise AssertionError("a symbol with bars must not be fetched for a direct load")
            yield

        assert loaders.load_first_bar_columns(conn, "r2", "TSLA", untouched(), "ibkr:test") is None
    stored = _rows(clean_db, "SELECT symbol, conid, session_date, open, high, low, close, volume FROM raw.daily_bars"
                             " ORDER BY session_date")
    assert stored == [tuple(b) for b in [*cols[1].to_bars(), *cols[0].to_bars()]]  # exact values
    assert _rows(clean_db, "SELECT DISTINCT source, run_id FROM raw.daily_bars") == [("ibkr:test", "r1")]
    assert _rows(clean_db, "SELECT rows_received, rows_inserted, run_id FROM raw.load_audit") == [(50, 50, "r1")]


def test_a_failing_window_rolls_the_direct_load_back_with_its_own_error(clean_db):
    from include.ibkr import errors as E

    def chunks():
        yield _columns("TSLA", date(2024, 3, 1), 20)
        raise E.InvalidBarError("TSLA", date(2024, 1, 5), "high 8.0 < low 9.0")

    with db.connection(clean_db) as conn:
        db.ensure_schema(conn)
        with pytest.raises(E.InvalidBarError, match="TSLA on 2024-01-05"):
            loaders.load_first_bar_columns(conn, "r1", "TSLA", chunks(), "ibkr:test")
        with pytest.raises(E.InvalidBarError):
            loaders.stage_bar_columns(conn, "r1", "TSLA", chunks(), "ibkr:test")
    assert _rows(clean_db, "SELECT count(*) FROM raw.daily_bars") == [(0,)]
    assert _rows(clean_db, "SELECT count(*) FROM staging.daily_bars") == [(0,)]


def test_staged_columns_upsert_like_staged_bars(clean_db):
    _load(clean_db, "r1", {"TSLA": _bars("TSLA", date(2024, 1, 1), 5)})
    with db.connection(clean_db) as conn:
        copied = loaders.stage_bar_columns(conn, "r2", "TSLA", [_columns("TSLA", date(2024, 1, 4), 4, bump=1)],
                                           "ibkr:test")
        (res,) = loaders.upsert_staged_bars(conn, "r2", ["TSLA"])
    assert copied.rows == 4 and (res.inserted, res.updated) == (2, 2)
