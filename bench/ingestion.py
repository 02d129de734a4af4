"""P1: bar ingestion through the DAG's own task functions (``tasks.fetch_bars`` per symbol, then
``tasks.load_bars``: simulator -> client -> COPY -> load) versus a raw COPY of the same rows into the same table.

The fetch tasks run in 5 worker processes, as the ``ibkr_api`` pool's 5 slots run them under Airflow (a task per
process); each call opens its client and connection like a task does. Airflow's own per-task start-up is not
counted. The simulator runs with IBKR's gateway-wide 10 req/s pacing OFF, to measure our pipeline rather than
IBKR's pacing; the 5-concurrent-history cap stays on. The wall time under real pacing is printed too.
"""

from __future__ import annotations

import io
import os
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from types import SimpleNamespace
from typing import Any

import httpx

from bench.common import record, scratch_database, simulator_process

SYMBOLS = int(os.environ.get("BENCH_SYMBOLS", "500"))
YEARS = int(os.environ.get("BENCH_YEARS", "10"))
WORKERS = 5  # the ibkr_api pool's slots
GOAL = 0.5
RUN_ID = "bench__p1"


class _TI:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def _context(sessions: int) -> dict[str, Any]:
    return {"dag": SimpleNamespace(dag_id="ibkr_ingest_daily_bars"), "run_id": RUN_ID, "ti": _TI(),
            "params": {"initial_history_sessions": sessions}, "data_interval_start": None,
            "outlet_events": defaultdict(SimpleNamespace)}


def _warm(_: int) -> None:
    import exchange_calendars  # noqa: F401  # preloaded by plugins/airflow_local_settings.py before tasks fork

    import include.ibkr.hook  # what a task process has imported before its body runs
    import include.marketdata.ingest
    import include.marketdata.tasks  # noqa: F401


def _fetch(symbol: str, sessions: int) -> dict[str, Any]:
    from include.marketdata import tasks

    return tasks.fetch_bars(symbol, _context(sessions))


LOAD_BEFORE = 0.0


def _cpu() -> dict[str, float]:
    """CPU seconds so far of this process's children (workers, simulator) and of PostgreSQL: its live processes plus
    what each postmaster's exited children used (a task's backend exits with its connection). Every PostgreSQL
    server on the machine is counted, other sessions' queries too."""
    import psutil

    out = {"workers": 0.0, "simulator": 0.0, "postgres": 0.0}
    procs = [(p, "simulator" if "sim.ibkr" in " ".join(p.cmdline()) else "workers", False)
             for p in psutil.Process().children()]
    pg = {p.pid: p for p in psutil.process_iter(["name", "ppid"]) if p.info["name"] in ("postgres", "postmaster")}
    procs += [(p, "postgres", p.info["ppid"] not in pg) for p in pg.values()]
    for proc, kind, postmaster in procs:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        out[kind] += t.user + t.system + ((t.children_user + t.children_system) if postmaster else 0.0)
    return out


def main() -> None:
    global LOAD_BEFORE
    LOAD_BEFORE = os.getloadavg()[0]
    import include.assets  # noqa: F401  # imported by the DAG file before a task body runs
    from include.marketdata import db
    from include.marketdata import tasks as _tasks  # noqa: F401

    sessions = YEARS * 252
    print(f"P1: {SYMBOLS} symbols x {YEARS} years ({sessions} sessions each) through tasks.fetch_bars"
          f" ({WORKERS} processes) + tasks.load_bars, 5 concurrent history requests")
    with simulator_process("--synthetic-symbols", str(SYMBOLS), "--no-rate-limits") as (api, admin), \
            scratch_database("bench_p1") as dsn:
        os.environ.update({"IBKR_GATEWAY_URL": api, "MARKET_DB_URL": dsn, "IBKR_RATE_PER_SEC": "0"})
        os.environ.pop("TRADING_CLOCK", None)
        with db.connection(dsn) as conn:
            db.ensure_schema(conn)
        symbols = [f"SYN{i:04d}" for i in range(1, SYMBOLS + 1)]
        with ProcessPoolExecutor(max_workers=WORKERS) as pool:
            list(pool.map(_warm, range(WORKERS * 2)))
            cpu0 = _cpu()
            t0 = time.perf_counter()
            staged = list(pool.map(_fetch, symbols, [sessions] * len(symbols), chunksize=4))
            t_fetch = time.perf_counter() - t0
            from include.marketdata import tasks

            summary = tasks.load_bars(staged, _context(sessions))
            t_total = time.perf_counter() - t0
            cpu = {k: v - cpu0.get(k, 0.0) for k, v in _cpu().items()}
        stats = httpx.get(f"{admin}/stats").json()
        requests = int(stats["requests"])
        loaded = summary["loaded"]
        rows = sum(r["received"] for r in loaded.values())
        inserted = sum(r["inserted"] for r in loaded.values())
        if summary["failed"] or len(loaded) != SYMBOLS:
            raise SystemExit(f"P1: not every symbol loaded: {summary['failed']}")

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

    rate, copy_rate = rows / t_total, rows / t_copy
    print(f"rows {rows:,} (inserted {inserted:,})")
    print(f"whole path : {t_total:7.2f} s  ({rate:,.0f} rows/s; fetch tasks {t_fetch:.2f} s,"
          f" load_bars {t_total - t_fetch:.2f} s)")
    print(f"raw COPY   : {t_copy:7.2f} s  ({copy_rate:,.0f} rows/s)")
    print(f"CPU seconds in the whole path: fetch workers {cpu['workers']:.1f}, simulator {cpu['simulator']:.1f},"
          f" PostgreSQL (all its processes) {cpu['postgres']:.1f}; {os.cpu_count()} cores, load average before"
          f" {LOAD_BEFORE:.1f} (other jobs share the machine)")
    verdict = "met" if rate / copy_rate >= GOAL else "NOT met"
    print(f"P1 ratio   : {rate / copy_rate:.2f} of raw COPY (goal >= {GOAL}: {verdict})")
    record("P1", f"ingestion {SYMBOLS} symbols x {YEARS} y ({rows:,} bars) / raw COPY of the same rows",
           f"{rate / copy_rate:.2f} ({t_total:.1f} s vs {t_copy:.1f} s)", f">= {GOAL}", rate / copy_rate >= GOAL)
    print(f"gateway requests {requests}; under IBKR's 10 req/s pacing that alone is >= {requests / 10:.0f} s")


if __name__ == "__main__":
    main()
