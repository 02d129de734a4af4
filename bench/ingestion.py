"""Bar ingestion through the whole path (simulator -> client -> COPY to staging -> upsert) versus a
raw COPY of the same rows into the same table.

The simulator runs with IBKR's gateway-wide 10 req/s pacing OFF here, to measure our pipeline
rather than IBKR's pacing; the 5-concurrent-history cap stays on, and the client keeps it. The
wall time under real pacing is printed too (requests / 10 req/s).
"""

from __future__ import annotations

import io
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from bench.common import scratch_database, simulator_process

SYMBOLS = int(os.environ.get("BENCH_SYMBOLS", "500"))
YEARS = int(os.environ.get("BENCH_YEARS", "10"))


def main() -> None:
    from include.ibkr.client import IBKRClient
    from include.marketdata import db, loaders
    from include.marketdata.calendar import MarketCalendar

    cal = MarketCalendar()
    end = cal.last_completed_session(datetime.now(UTC))
    start = cal.sessions_back(end, YEARS * 252 - 1)
    print(f"{SYMBOLS} symbols x {YEARS} years ({start} .. {end}), 5 concurrent history requests")
    with simulator_process("--synthetic-symbols", str(SYMBOLS), "--no-rate-limits") as (api, _admin), \
            scratch_database() as dsn:
        with db.connection(dsn) as conn:
            db.ensure_schema(conn)
        symbols = [f"SYN{i:04d}" for i in range(1, SYMBOLS + 1)]
        local = threading.local()

        def one(client: IBKRClient, symbol: str) -> int:
            if not hasattr(local, "conn"):
                local.conn = db.connect(dsn)
            bars = client.daily_bars(client.resolve_contract(symbol), start, end)
            return loaders.stage_bars(local.conn, "bench", symbol, bars, f"ibkr:{client.server_name}")

        with IBKRClient(api, rate_per_sec=None, max_concurrent_history=5) as client:
            client.ensure_session()
            t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=5) as pool:
                staged = sum(pool.map(lambda s: one(client, s), symbols))
            t_fetch = time.perf_counter() - t0
            with db.connection(dsn) as conn:
                results = loaders.upsert_staged_bars(conn, "bench", symbols)
            t_total = time.perf_counter() - t0
            requests = client.stats()["requests"] if hasattr(client, "stats") else None
        inserted = sum(r.inserted for r in results)

        # The same rows, raw: COPY out of the loaded table, then COPY into the emptied table.
        with db.connection(dsn) as conn, conn.cursor() as cur:
            buf = io.StringIO()
            cur.copy_expert("COPY raw.daily_bars TO STDOUT", buf)
            cur.execute("TRUNCATE raw.daily_bars")
            conn.commit()
            buf.seek(0)
            t1 = time.perf_counter()
            cur.copy_expert("COPY raw.daily_bars FROM STDIN", buf)
            conn.commit()
            t_copy = time.perf_counter() - t1

    rate, copy_rate = inserted / t_total, inserted / t_copy
    print(f"rows staged {staged:,}, inserted {inserted:,}")
    print(f"whole path : {t_total:7.2f} s  ({rate:,.0f} rows/s; fetch+stage {t_fetch:.2f} s,"
          f" upsert {t_total - t_fetch:.2f} s)")
    print(f"raw COPY   : {t_copy:7.2f} s  ({copy_rate:,.0f} rows/s)")
    print(f"ratio      : {rate / copy_rate:.2f} of raw COPY (goal >= 0.5)")
    if requests:
        print(f"gateway requests: {requests}; under IBKR's 10 req/s pacing that alone is >= {requests / 10:.0f} s")


if __name__ == "__main__":
    main()
