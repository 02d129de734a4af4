"""P1: bar ingestion through the DAG's own task functions (``tasks.fetch_bars`` per symbol, then
``tasks.load_bars``: simulator -> client -> COPY -> load) versus a raw COPY of the same rows into the same table.

The fetch tasks run in 5 worker processes, as the ``ibkr_api`` pool's 5 slots run them under Airflow (a task per
process); each call opens its client and connection like a task does. The workers are forked from a process that
has done what the scheduler does before it forks task processes (plugins/airflow_local_settings.py: the task
modules imported, the exchange calendar and the TLS context built); Airflow's own per-task start-up is not
counted. BENCH_REPEATS first loads (default 3), each followed by a raw COPY of its rows; medians. The simulator
runs with IBKR's gateway-wide 10 req/s pacing OFF, to measure our pipeline rather than IBKR's pacing; the
5-concurrent-history cap stays on. It is asked once for each symbol before the loads, so that it has generated every
symbol's series, as a real gateway has its history. The wall time under real pacing is printed too.
"""

from __future__ import annotations

import io
import os
import statistics
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
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
GOAL = 0.5
RUN_ID = "bench__p1"


class _TI:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def _context(sessions: int, run_id: str) -> dict[str, Any]:
    return {"dag": SimpleNamespace(dag_id="ibkr_ingest_daily_bars"), "run_id": run_id, "ti": _TI(),
            "params": {"initial_history_sessions": sessions}, "data_interval_start": None,
            "outlet_events": defaultdict(SimpleNamespace)}


def _preload_like_the_scheduler() -> None:
    """What a task process starts with under Airflow: the scheduler (plugins/airflow_local_settings.py) imports
    exchange_calendars and the project's task modules and builds the exchange calendar and the TLS context before it
    forks task processes. Done here before the pool forks its workers, so they inherit the same."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "plugins" / "airflow_local_settings.py"
    spec = importlib.util.spec_from_file_location("bench_airflow_local_settings", path)
    assert spec is not None and spec.loader is not None
    settings = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(settings)  # only defines: its preload runs in a scheduler or Celery worker process
    settings._import_all(["exchange_calendars", *settings.TASK_MODULES, "include.ibkr.hook",
                          "include.marketdata.tasks"])
    settings._warm()


def _warm(_: int) -> None:
    """Starts a worker (forked from the preloaded bench process)."""


def _warm_simulator(api: str, symbols: list[str]) -> float:
    """The simulator generates a symbol's synthetic series on its first request for it (~1.4 s of its CPU for 500
    symbols), where a real gateway has its history: one short history request per symbol before any timed load,
    so the first load does not pay for that and the three loads measure the same work. Seconds."""
    from include.ibkr.client import IBKRClient

    t0 = time.perf_counter()
    with IBKRClient(api, retries=0, rate_per_sec=None) as client:  # the simulator paces nothing here
        client.ensure_session()
        for symbol in symbols:
            client.history(client.resolve_contract(symbol).conid, period="1d", bar="1d")
    return time.perf_counter() - t0


def _fetch(symbol: str, sessions: int, run_id: str) -> dict[str, Any]:
    from include.marketdata import tasks

    return tasks.fetch_bars(symbol, _context(sessions, run_id))


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


def _path(pool: ProcessPoolExecutor, symbols: list[str], sessions: int, run: int) -> tuple[float, float, dict, dict]:
    """One first load of every symbol: (seconds in all, of them in the fetch tasks, load_bars' summary, CPU seconds
    by kind)."""
    from include.marketdata import tasks

    run_id = f"{RUN_ID}_{run}"
    cpu0 = _cpu()
    t0 = time.perf_counter()
    staged = list(pool.map(_fetch, symbols, [sessions] * len(symbols), [run_id] * len(symbols), chunksize=4))
    t_fetch = time.perf_counter() - t0
    summary = tasks.load_bars(staged, _context(sessions, run_id))
    t_total = time.perf_counter() - t0
    return t_total, t_fetch, summary, {k: v - cpu0.get(k, 0.0) for k, v in _cpu().items()}


def _raw_copy(dsn: str, rows: io.StringIO) -> float:
    """The same rows COPYed into the emptied table (text format, one statement): seconds."""
    from include.marketdata import db

    with db.connection(dsn) as conn, conn.cursor() as cur:
        cur.execute("TRUNCATE raw.daily_bars")
        conn.commit()
        rows.seek(0)
        t1 = time.perf_counter()
        cur.copy_expert("COPY raw.daily_bars FROM STDIN", rows)
        conn.commit()
        return time.perf_counter() - t1


def main() -> None:
    global LOAD_BEFORE
    LOAD_BEFORE = os.getloadavg()[0]
    import include.assets  # noqa: F401  # imported by the DAG file before a task body runs
    from include.marketdata import db

    sessions = YEARS * 252
    print(f"P1: {SYMBOLS} symbols x {YEARS} years ({sessions} sessions each) through tasks.fetch_bars"
          f" ({WORKERS} processes) + tasks.load_bars, 5 concurrent history requests; {REPEATS} first loads, each"
          " followed by a raw COPY of its rows (interleaved: load on the machine hits both sides alike), medians")
    with simulator_process("--synthetic-symbols", str(SYMBOLS), "--no-rate-limits") as (api, admin), \
            scratch_database("bench_p1") as dsn:
        os.environ.update({"IBKR_GATEWAY_URL": api, "MARKET_DB_URL": dsn, "IBKR_RATE_PER_SEC": "0"})
        os.environ.pop("TRADING_CLOCK", None)
        with db.connection(dsn) as conn:
            db.ensure_schema(conn)
        symbols = [f"SYN{i:04d}" for i in range(1, SYMBOLS + 1)]
        print(f"simulator warmed up (each symbol's series generated) in {_warm_simulator(api, symbols):.1f} s")
        _preload_like_the_scheduler()
        paths, copies, requests = [], [], 0
        with ProcessPoolExecutor(max_workers=WORKERS) as pool:
            list(pool.map(_warm, range(WORKERS * 2)))
            for run in range(REPEATS):
                with db.connection(dsn) as conn, conn, conn.cursor() as cur:  # a first load again: no bars, no conids
                    cur.execute("TRUNCATE raw.daily_bars, raw.contracts")
                before = int(httpx.get(f"{admin}/stats").json()["requests"])
                t_total, t_fetch, summary, cpu = _path(pool, symbols, sessions, run)
                requests = int(httpx.get(f"{admin}/stats").json()["requests"]) - before
                loaded = summary["loaded"]
                if summary["failed"] or len(loaded) != SYMBOLS:
                    raise SystemExit(f"P1: not every symbol loaded: {summary['failed']}")
                rows = sum(r["received"] for r in loaded.values())
                inserted = sum(r["inserted"] for r in loaded.values())
                buf = io.StringIO()
                with db.connection(dsn) as conn, conn.cursor() as cur:
                    cur.copy_expert("COPY raw.daily_bars TO STDOUT", buf)
                t_copy = _raw_copy(dsn, buf)
                paths.append(t_total)
                copies.append(t_copy)
                print(f"run {run + 1}: whole path {t_total:6.2f} s (fetch tasks {t_fetch:.2f} s, load_bars"
                      f" {t_total - t_fetch:.2f} s; {rows:,} rows, {inserted:,} inserted), raw COPY {t_copy:.2f} s:"
                      f" {t_copy / t_total:.2f}; CPU s: fetch workers {cpu['workers']:.1f}, simulator"
                      f" {cpu['simulator']:.1f}, PostgreSQL {cpu['postgres']:.1f}")

    t_total, t_copy = statistics.median(paths), statistics.median(copies)
    ratio = t_copy / t_total  # rows per second of the path over the raw COPY's, same rows
    print(f"whole path : {t_total:7.2f} s  ({rows / t_total:,.0f} rows/s), median of {REPEATS}")
    print(f"raw COPY   : {t_copy:7.2f} s  ({rows / t_copy:,.0f} rows/s), median of {REPEATS}")
    print(f"CPU seconds as above: PostgreSQL counts every server on the machine; {os.cpu_count()} cores, load"
          f" average before {LOAD_BEFORE:.1f} (other jobs share the machine)")
    verdict = "met" if ratio >= GOAL else "NOT met"
    print(f"P1 ratio   : {ratio:.2f} of raw COPY (goal >= {GOAL}: {verdict})")
    record("P1", f"ingestion {SYMBOLS} symbols x {YEARS} y ({rows:,} bars) / raw COPY of the same rows, median of"
           f" {REPEATS}", f"{ratio:.2f} ({t_total:.1f} s vs {t_copy:.1f} s)", f">= {GOAL}", ratio >= GOAL)
    print(f"gateway requests {requests} a load; under IBKR's 10 req/s pacing that alone is >= {requests / 10:.0f} s")


if __name__ == "__main__":
    main()
