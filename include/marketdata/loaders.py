"""COPY + upsert loaders for raw market data. Every load is one transaction; re-runs are idempotent.

Staging, per-symbol upserts and the first-load shortcut: docs/ingestion.md ("Loaders").
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

    from include.ibkr.models import Bar, Contract, Snapshot
    from include.ibkr.parsing import BarColumns

_BAR_COLUMNS = ("symbol", "conid", "session_date", "open", "high", "low", "close", "volume")
_VALUE_COLUMNS = ("conid", "open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class LoadResult:
    symbol: str
    received: int
    inserted: int
    updated: int

    @property
    def unchanged(self) -> int:
        return self.received - self.inserted - self.updated


def bars_to_copy_text(run_id: str, source: str, bars: Iterable[Bar]) -> io.StringIO:
    """COPY text for ``staging.daily_bars``. repr() round-trips floats exactly; COPY would accept
    "nan"/"inf" silently, so one check on the row sum (non-finite if any value is) refuses them."""
    suffix = f"\t{source}\n"
    lines = []
    append = lines.append
    for sym, conid, day, o, h, lo, c, v in bars:
        if not math.isfinite(o + h + lo + c + v):
            raise ValueError(f"{sym} {day}: non-finite value in {(o, h, lo, c, v)!r} cannot be loaded")
        append(f"{run_id}\t{sym}\t{conid}\t{day}\t{o!r}\t{h!r}\t{lo!r}\t{c!r}\t{v!r}{suffix}")
    return io.StringIO("".join(lines))


def stage_bars(conn: PgConnection, run_id: str, symbol: str, bars: Sequence[Bar], source: str) -> int:
    """Replace this run's staged bars for ``symbol`` (so a task retry is idempotent); one transaction."""
    foreign = {b.symbol for b in bars} - {symbol}
    if foreign:
        raise ValueError(f"stage_bars({symbol!r}) was given bars for other symbols: {sorted(foreign)}")
    text = bars_to_copy_text(run_id, source, bars)
    with conn, conn.cursor() as cur:
        cur.execute("DELETE FROM staging.daily_bars WHERE run_id = %s AND symbol = %s", (run_id, symbol))
        cur.copy_expert(
            "COPY staging.daily_bars (run_id, " + ", ".join(_BAR_COLUMNS) + ", source) FROM STDIN",
            text,
        )
    return len(bars)


# ---------------------------------------------------------------- binary COPY straight from bar columns
_PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
_PGCOPY_TRAILER = b"\xff\xff"
_PG_EPOCH_DAYS = 10_957  # 2000-01-01 (PostgreSQL's date epoch) in days since 1970-01-01
_FIRST_LOAD_LOCK = 727_002  # advisory lock class: one first load per symbol at a time


@dataclass(frozen=True)
class CopiedBars:
    rows: int
    first_day: int | None  # epoch days
    last_day: int | None


def _field(value: str | int) -> bytes:
    """One binary COPY field: length, then the text's UTF-8 bytes or a bigint."""
    data = value.to_bytes(8, "big", signed=True) if isinstance(value, int) else value.encode()
    return len(data).to_bytes(4, "big") + data


class _BinaryBarStream:
    """A file for ``copy_expert``: COPY BINARY rows built with numpy from each ``BarColumns`` as COPY asks for them
    (so the next history window is fetched while the server inserts the previous one). Every row is ``lead``
    (field count + leading text/int fields), session date, the five values, then ``trail``."""

    def __init__(self, chunks: Iterable[BarColumns], symbol: str, lead: list[str], trail: list[str]) -> None:
        import numpy as np

        self._np = np
        self._chunks = iter(chunks)
        self._symbol = symbol
        self._pending = [_PGCOPY_HEADER]
        self._lead_texts, self._trail_texts = lead, trail
        self._dtype: Any = None
        self._conid: int | None = None
        self.rows, self.first_day, self.last_day = 0, None, None
        self.error: BaseException | None = None
        self._done = False

    def _layout(self, conid: int) -> None:
        """Row layout: the leading texts then conid (constant per symbol), date and values, the trailing texts."""
        np = self._np
        lead = (len(self._lead_texts) + 7 + len(self._trail_texts)).to_bytes(2, "big")
        lead += b"".join(_field(v) for v in [*self._lead_texts, conid])
        trail = b"".join(_field(v) for v in self._trail_texts)
        fields: list[tuple[str, Any]] = [("lead", f"V{len(lead)}"), ("dl", ">i4"), ("d", ">i4")]
        for name in "ohlcv":
            fields += [(f"{name}l", ">i4"), (name, ">f8")]
        fields.append(("trail", f"V{len(trail)}"))
        self._dtype, self._conid = np.dtype(fields), conid
        self._lead, self._trail = np.void(lead), np.void(trail)

    def copy(self, cur: Any, sql: str) -> None:
        """Run the COPY; a failure to produce the rows (gateway fault, bad bar) is raised as itself, not as the
        QueryCanceled psycopg2 turns it into (the transaction is aborted either way)."""
        import psycopg2

        try:
            cur.copy_expert(sql, self)
        except psycopg2.Error:
            if self.error is not None:
                raise self.error from None
            raise

    def read(self, size: int = -1) -> bytes:
        try:
            return self._read()
        except BaseException as exc:
            self.error = exc
            raise

    def _read(self) -> bytes:
        while not self._pending and not self._done:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._pending.append(_PGCOPY_TRAILER)
                self._done = True
            elif len(chunk):
                self._pending.append(self._encode(chunk))
        return self._pending.pop(0) if self._pending else b""

    def _encode(self, cols: BarColumns) -> bytes:
        np = self._np
        if cols.symbol != self._symbol:
            raise ValueError(f"COPY of {self._symbol} was given bars of {cols.symbol}")
        if self._dtype is None:
            self._layout(int(cols.conid))
        elif cols.conid != self._conid:
            raise ValueError(f"COPY of {self._symbol} was given bars of conid {cols.conid} and {self._conid}")
        values = (cols.open, cols.high, cols.low, cols.close, cols.volume)
        finite = np.isfinite(cols.open + cols.high + cols.low + cols.close + cols.volume)
        if not finite.all():  # the parser refuses these; COPY would take them silently
            bad = int(np.flatnonzero(~finite)[0])
            raise ValueError(f"{cols.symbol} {_date(int(cols.days[bad]))}: non-finite value cannot be loaded")
        out = np.empty(len(cols), dtype=self._dtype)
        out["lead"], out["trail"], out["dl"] = self._lead, self._trail, 4
        out["d"] = cols.days - _PG_EPOCH_DAYS
        for name, col in zip("ohlcv", values, strict=True):
            out[f"{name}l"], out[name] = 8, col
        self.rows += len(cols)
        lo, hi = int(cols.days.min()), int(cols.days.max())
        self.first_day = lo if self.first_day is None else min(self.first_day, lo)
        self.last_day = hi if self.last_day is None else max(self.last_day, hi)
        return out.tobytes()


def _date(epoch_day: int) -> Any:
    from datetime import date, timedelta

    return date(1970, 1, 1) + timedelta(days=epoch_day)


def stage_bar_columns(conn: PgConnection, run_id: str, symbol: str, chunks: Iterable[BarColumns],
                      source: str) -> CopiedBars:
    """``stage_bars`` for bar columns (binary COPY, one transaction; a failing chunk rolls the symbol back)."""
    stream = _BinaryBarStream(chunks, symbol, [run_id, symbol], [source])
    with conn, conn.cursor() as cur:
        cur.execute("DELETE FROM staging.daily_bars WHERE run_id = %s AND symbol = %s", (run_id, symbol))
        stream.copy(cur, "COPY staging.daily_bars (run_id, " + ", ".join(_BAR_COLUMNS) + ", source)"
                         " FROM STDIN (FORMAT binary)")
    return CopiedBars(stream.rows, stream.first_day, stream.last_day)


def load_first_bar_columns(conn: PgConnection, run_id: str, symbol: str, chunks: Iterable[BarColumns],
                           source: str) -> tuple[LoadResult, CopiedBars] | None:
    """A symbol's first load: COPY straight into ``raw.daily_bars`` (no staging, no upsert) in one transaction,
    audited like an upsert. None, with nothing read from ``chunks``, when the symbol already has bars (another run
    loaded it meanwhile): stage and upsert instead.

    ROW EXCLUSIVE waits for a running upsert (which holds SHARE ROW EXCLUSIVE) and makes later ones wait for this
    COPY; the advisory lock makes a second first load of the same symbol wait, then find its rows."""
    stream = _BinaryBarStream(chunks, symbol, [symbol], [source, run_id])
    with conn, conn.cursor() as cur:
        cur.execute("LOCK TABLE raw.daily_bars IN ROW EXCLUSIVE MODE")
        cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_FIRST_LOAD_LOCK, symbol))
        cur.execute("SELECT EXISTS (SELECT 1 FROM raw.daily_bars WHERE symbol = %s)", (symbol,))
        if cur.fetchone()[0]:
            return None
        stream.copy(cur, "COPY raw.daily_bars (" + ", ".join(_BAR_COLUMNS) + ", source, run_id)"
                         " FROM STDIN (FORMAT binary)")
        result = LoadResult(symbol, stream.rows, stream.rows, 0)
        _audit(cur, "raw.daily_bars", run_id, [result])
    return result, CopiedBars(stream.rows, stream.first_day, stream.last_day)


# Staged rows are unique per (symbol, session_date): re-staging a symbol replaces its rows and the
# parser rejects duplicate dates. Update-then-insert (under a writer lock) is ~1.5x faster than
# INSERT ... ON CONFLICT here, whose speculative insertion dominates a first load (make bench).
_COLS = ", ".join(_BAR_COLUMNS)
_CHANGED = (f"({', '.join(f't.{c}' for c in _VALUE_COLUMNS)})"
            f" IS DISTINCT FROM ({', '.join(f's.{c}' for c in _VALUE_COLUMNS)})")
# psycopg2 binds client-side: with symbol None the planner sees NULL IS NULL (folded away), one plan per use.
_ONE_SYMBOL = "(%(symbol)s::text IS NULL OR s.symbol = %(symbol)s::text)"
_UPDATE_SQL = f"""
WITH updated AS (
    UPDATE raw.daily_bars AS t SET
        {", ".join(f"{c} = s.{c}" for c in _VALUE_COLUMNS)},
        source = s.source, run_id = %(run_id)s, loaded_at = now()
    FROM staging.daily_bars AS s
    WHERE s.run_id = %(run_id)s AND {_ONE_SYMBOL} AND t.symbol = s.symbol AND t.session_date = s.session_date
      AND {_CHANGED}
    RETURNING t.symbol
)
SELECT symbol, count(*) FROM updated GROUP BY symbol
"""
_INSERT_SQL = f"""
WITH inserted AS (
    INSERT INTO raw.daily_bars ({_COLS}, source, run_id, loaded_at)
    SELECT {", ".join(f"s.{c}" for c in _BAR_COLUMNS)}, s.source, %(run_id)s, now()
    FROM staging.daily_bars AS s
    WHERE s.run_id = %(run_id)s AND {_ONE_SYMBOL} AND NOT EXISTS (
        SELECT 1 FROM raw.daily_bars t WHERE t.symbol = s.symbol AND t.session_date = s.session_date)
    RETURNING symbol
)
SELECT symbol, count(*) FROM inserted GROUP BY symbol
"""
_RECEIVED_SQL = ("SELECT symbol, count(*) FROM staging.daily_bars AS s WHERE s.run_id = %(run_id)s AND "
                 f"{_ONE_SYMBOL} GROUP BY symbol")


def upsert_staged_bars(
    conn: PgConnection, run_id: str, expected_symbols: Sequence[str] | None = None
) -> list[LoadResult]:
    """Upsert every bar staged by ``run_id`` into ``raw.daily_bars`` in one transaction (all or nothing)."""
    with conn, conn.cursor() as cur:
        results = _upsert(cur, run_id, None)
        if expected_symbols is not None:
            missing = sorted(set(expected_symbols) - {r.symbol for r in results})
            if missing:
                # Raising inside the transaction rolls the whole batch back: all symbols or none.
                raise RuntimeError(f"run {run_id!r} has no staged bars for {missing}; nothing was loaded")
        _finish(cur, "raw.daily_bars", run_id, results, None)
    return results


def upsert_staged_symbol(conn: PgConnection, run_id: str, symbol: str) -> LoadResult:
    """Upsert the bars ``run_id`` staged for ``symbol`` in a transaction of its own; raises (rolling back only this
    symbol) when it has none staged."""
    with conn, conn.cursor() as cur:
        results = _upsert(cur, run_id, symbol)
        if not results:
            raise RuntimeError(f"run {run_id!r} has no staged bars for {symbol}; it was not loaded")
        _finish(cur, "raw.daily_bars", run_id, results, symbol)
    return results[0]


def _upsert(cur: Any, run_id: str, symbol: str | None) -> list[LoadResult]:
    args = {"run_id": run_id, "symbol": symbol}
    # Writers queue here (readers do not): concurrent backfills overlapping on sessions stay correct.
    cur.execute("LOCK TABLE raw.daily_bars IN SHARE ROW EXCLUSIVE MODE")
    cur.execute(_RECEIVED_SQL, args)
    received = dict(cur.fetchall())
    cur.execute(_UPDATE_SQL, args)
    updated = dict(cur.fetchall())
    cur.execute(_INSERT_SQL, args)
    inserted = dict(cur.fetchall())
    return [LoadResult(sym, int(n), int(inserted.get(sym, 0)), int(updated.get(sym, 0)))
            for sym, n in sorted(received.items())]


def _finish(cur: Any, table: str, run_id: str, results: Sequence[LoadResult], symbol: str | None) -> None:
    """Audit the load and drop what it consumed from staging (and staged rows abandoned for a week)."""
    _audit(cur, table, run_id, results)
    if symbol is None:
        cur.execute("DELETE FROM staging.daily_bars WHERE run_id = %s", (run_id,))
    else:
        cur.execute("DELETE FROM staging.daily_bars WHERE run_id = %s AND symbol = %s", (run_id, symbol))
    cur.execute("DELETE FROM staging.daily_bars WHERE staged_at < now() - interval '7 days'")


def _audit(cur: Any, table: str, run_id: str | None, results: Sequence[LoadResult]) -> None:
    if not results:
        return
    cur.executemany(
        "INSERT INTO raw.load_audit (table_name, run_id, symbol, rows_received, rows_inserted,"
        " rows_updated, rows_unchanged) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        [(table, run_id, r.symbol, r.received, r.inserted, r.updated, r.unchanged) for r in results],
    )


def latest_sessions(conn: PgConnection, symbols: Sequence[str]) -> dict[str, Any]:
    """Latest loaded session date per symbol (symbols with no bars are absent)."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT symbol, max(session_date) FROM raw.daily_bars WHERE symbol = ANY(%s) GROUP BY symbol",
            (list(symbols),),
        )
        return dict(cur.fetchall())


def save_contracts(conn: PgConnection, contracts: Iterable[Contract]) -> None:
    rows = [(c.symbol, c.conid, c.exchange, c.company_name, c.currency) for c in contracts]
    if not rows:
        return
    with conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO raw.contracts (symbol, conid, exchange, company_name, currency)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (symbol) DO UPDATE SET conid = EXCLUDED.conid,"
            " exchange = EXCLUDED.exchange, company_name = EXCLUDED.company_name,"
            " currency = EXCLUDED.currency, resolved_at = now()",
            rows,
        )


_SNAPSHOT_FIELDS = (
    "last", "last_price_type", "bid", "ask", "bid_size", "ask_size", "last_size", "volume",
    "day_high", "day_low", "open", "prior_close", "change", "change_pct", "md_availability",
)  # fmt: skip


def load_snapshots(conn: PgConnection, snapshots: Sequence[Snapshot], run_id: str, source: str) -> int:
    """Insert snapshots, skipping ones already stored (same symbol and gateway update time); ``quote_at`` stays
    NULL for a snapshot the gateway sent without its update time."""
    if not snapshots:
        return 0
    cols = ("symbol", "conid", "captured_at", "quote_at", *_SNAPSHOT_FIELDS, "source", "run_id")
    rows = [
        (s.symbol, s.conid, s.captured_at, s.quote_at, *(getattr(s, f) for f in _SNAPSHOT_FIELDS), source, run_id)
        for s in snapshots
    ]
    placeholders = ", ".join(["%s"] * len(cols))
    with conn, conn.cursor() as cur:
        from psycopg2.extras import execute_values

        inserted = execute_values(
            cur,
            f"INSERT INTO raw.market_snapshots ({', '.join(cols)}) VALUES %s"
            " ON CONFLICT (symbol, captured_at) DO NOTHING RETURNING symbol",
            rows,
            template=f"({placeholders})",
            fetch=True,
        )
        counts: dict[str, int] = {}
        for (sym,) in inserted:
            counts[sym] = counts.get(sym, 0) + 1
        received: dict[str, int] = {}
        for s in snapshots:
            received[s.symbol] = received.get(s.symbol, 0) + 1
        _audit(
            cur,
            "raw.market_snapshots",
            run_id,
            [LoadResult(sym, n, counts.get(sym, 0), 0) for sym, n in sorted(received.items())],
        )
    return len(inserted)
