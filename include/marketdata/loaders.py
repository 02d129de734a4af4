"""COPY + upsert loaders for raw market data. Every load is one transaction; re-runs are idempotent.

Daily bars go in two steps so a DAG run is all-or-nothing across symbols: per-symbol tasks COPY
their bars into ``staging.daily_bars`` (keyed by run id), then one transaction upserts the batch.
Unchanged rows are not rewritten (the upsert's WHERE skips identical values).
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


def _fmt(value: float) -> str:
    # repr() round-trips a float exactly; COPY would turn "nan" into NaN silently, so refuse it here.
    if not math.isfinite(value):
        raise ValueError(f"non-finite value {value!r} cannot be loaded")
    return repr(float(value))


def bars_to_copy_text(run_id: str, source: str, bars: Iterable[Bar]) -> io.StringIO:
    buf = io.StringIO()
    write = buf.write
    for b in bars:
        write(
            f"{run_id}\t{b.symbol}\t{b.conid}\t{b.session_date.isoformat()}\t{_fmt(b.open)}\t"
            f"{_fmt(b.high)}\t{_fmt(b.low)}\t{_fmt(b.close)}\t{_fmt(b.volume)}\t{source}\n"
        )
    buf.seek(0)
    return buf


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


_UPSERT_SQL = f"""
WITH batch AS (
    SELECT DISTINCT ON (symbol, session_date) {", ".join(_BAR_COLUMNS)}, source
    FROM staging.daily_bars
    WHERE run_id = %(run_id)s
    ORDER BY symbol, session_date, staged_at DESC
), upserted AS (
    INSERT INTO raw.daily_bars AS t ({", ".join(_BAR_COLUMNS)}, source, run_id, loaded_at)
    SELECT {", ".join(_BAR_COLUMNS)}, source, %(run_id)s, now() FROM batch
    ON CONFLICT (symbol, session_date) DO UPDATE SET
        {", ".join(f"{c} = EXCLUDED.{c}" for c in _VALUE_COLUMNS)},
        source = EXCLUDED.source, run_id = EXCLUDED.run_id, loaded_at = EXCLUDED.loaded_at
    WHERE ({", ".join(f"t.{c}" for c in _VALUE_COLUMNS)})
          IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in _VALUE_COLUMNS)})
    RETURNING t.symbol, (xmax = 0) AS inserted
), received AS (
    SELECT symbol, count(*) AS n FROM batch GROUP BY symbol
)
SELECT r.symbol, r.n,
       count(u.symbol) FILTER (WHERE u.inserted),
       count(u.symbol) FILTER (WHERE NOT u.inserted)
FROM received r LEFT JOIN upserted u USING (symbol)
GROUP BY r.symbol, r.n
ORDER BY r.symbol
"""


def upsert_staged_bars(
    conn: PgConnection, run_id: str, expected_symbols: Sequence[str] | None = None
) -> list[LoadResult]:
    """Upsert every bar staged by ``run_id`` into ``raw.daily_bars`` in one transaction."""
    with conn, conn.cursor() as cur:
        cur.execute(_UPSERT_SQL, {"run_id": run_id})
        results = [LoadResult(sym, int(n), int(ins), int(upd)) for sym, n, ins, upd in cur.fetchall()]
        if expected_symbols is not None:
            missing = sorted(set(expected_symbols) - {r.symbol for r in results})
            if missing:
                # Raising inside the transaction rolls the whole batch back: all symbols or none.
                raise RuntimeError(f"run {run_id!r} has no staged bars for {missing}; nothing was loaded")
        _audit(cur, "raw.daily_bars", run_id, results)
        cur.execute("DELETE FROM staging.daily_bars WHERE run_id = %s", (run_id,))
        # Staged rows of runs that never reached this step are abandoned after a week.
        cur.execute("DELETE FROM staging.daily_bars WHERE staged_at < now() - interval '7 days'")
    return results


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


def cached_contracts(conn: PgConnection, symbols: Sequence[str]) -> dict[str, int]:
    with conn, conn.cursor() as cur:
        cur.execute("SELECT symbol, conid FROM raw.contracts WHERE symbol = ANY(%s)", (list(symbols),))
        return {s: int(c) for s, c in cur.fetchall()}


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
    """Insert snapshots, skipping ones already stored (same symbol and gateway update time)."""
    if not snapshots:
        return 0
    cols = ("symbol", "conid", "captured_at", *_SNAPSHOT_FIELDS, "source", "run_id")
    rows = [
        (s.symbol, s.conid, s.captured_at, *(getattr(s, f) for f in _SNAPSHOT_FIELDS), source, run_id)
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
