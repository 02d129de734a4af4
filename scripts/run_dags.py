"""Run DAGs end to end with ``dag.test()`` against the configured stack, then report what landed.

Usage (inside the local stack's environment, see ``scripts/demo.py``):
    python -m scripts.run_dags ibkr_ingest_daily_bars ibkr_ingest_snapshots
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def migrate() -> None:
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, stdout=subprocess.DEVNULL)


def run(dag_ids: list[str]) -> int:
    from airflow.dag_processing.dagbag import DagBag

    from include.dbt_project import ensure_manifest
    from scripts import airflow_objects

    airflow_objects.apply()
    ensure_manifest(force=True)  # the Cosmos DAG renders from dbt's manifest
    bag = DagBag(dag_folder=str(REPO / "dags"))
    if bag.import_errors:
        for path, err in bag.import_errors.items():
            print(f"import error in {path}:\n{err}", file=sys.stderr)
        return 1
    failed = 0
    for dag_id in dag_ids:
        dag = bag.dags.get(dag_id)
        if dag is None:
            print(f"unknown DAG {dag_id!r}; known: {sorted(bag.dag_ids)}", file=sys.stderr)
            return 1
        started = time.monotonic()
        dr = dag.test()
        state = str(getattr(dr.state, "value", dr.state))
        print(f"==> {dag_id}: run {dr.run_id} {state} in {time.monotonic() - started:.1f} s")
        failed += state != "success"
    return failed


def report() -> None:
    import psycopg2

    from include.settings import load_settings, mask_url

    dsn = load_settings().require_market_db_url()
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT symbol, count(*), min(session_date), max(session_date), max(source)"
            " FROM raw.daily_bars GROUP BY symbol ORDER BY symbol"
        )
        bars = cur.fetchall()
        cur.execute(
            "SELECT symbol, count(*), max(captured_at) FROM raw.market_snapshots GROUP BY symbol ORDER BY 1"
        )
        snaps = {s: (n, at) for s, n, at in cur.fetchall()}
        cur.execute(
            "SELECT DISTINCT ON (symbol) symbol, rows_inserted, rows_updated, rows_unchanged"
            " FROM raw.load_audit WHERE table_name = 'raw.daily_bars' ORDER BY symbol, load_id DESC"
        )
        last = {s: (i, u, n) for s, i, u, n in cur.fetchall()}
    print(f"\nMarket data in {mask_url(dsn)}")
    print(f"{'symbol':8} {'bars':>6} {'first':>10} {'last':>10} {'last load (ins/upd/same)':>26}"
          f" {'snapshots':>9}  source")
    for symbol, n, first, lastd, source in bars:
        ins, upd, same = last.get(symbol, (0, 0, 0))
        print(f"{symbol:8} {n:6d} {first!s:>10} {lastd!s:>10} {f'{ins}/{upd}/{same}':>26}"
              f" {snaps.get(symbol, (0, None))[0]:9d}  {source}")
    print("Tables: raw.daily_bars, raw.market_snapshots, raw.contracts, raw.load_audit")
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('analytics_marts.fct_latest_features') IS NOT NULL")
        if not cur.fetchone()[0]:
            return
        cur.execute("SELECT symbol, session_date, close, sma_20, sma_200, rsi_14, macd_hist, atr_14"
                    " FROM analytics_marts.fct_latest_features ORDER BY symbol")
        rows = cur.fetchall()
    print("\nLatest features (analytics_marts.fct_latest_features, dbt via Cosmos):")
    print(f"{'symbol':8} {'session':>10} {'close':>9} {'sma_20':>9} {'sma_200':>9} {'rsi_14':>7} {'macd_hist':>9}"
          f" {'atr_14':>7}")
    for sym, day, close, sma20, sma200, rsi, hist, atr in rows:
        print(f"{sym:8} {day!s:>10} {close:9.2f} {sma20:9.2f} {sma200:9.2f} {rsi:7.1f} {hist:9.3f} {atr:7.2f}")


if __name__ == "__main__":
    migrate()
    code = run(sys.argv[1:])
    report()
    sys.exit(1 if code else 0)
