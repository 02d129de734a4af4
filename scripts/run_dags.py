"""Run DAGs end to end with ``dag.test()`` against the configured stack, then report what landed.

Usage (inside the local stack's environment, see ``scripts/demo.py``); a conf follows the DAG id after ``=``:
    python -m scripts.run_dags ibkr_ingest_daily_bars 'ibkr_trading_strategy={"strategy_id": 1}'
"""

from __future__ import annotations

import json
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
    for spec in dag_ids:
        dag_id, _, conf = spec.partition("=")
        dag = bag.dags.get(dag_id)
        if dag is None:
            print(f"unknown DAG {dag_id!r}; known: {sorted(bag.dag_ids)}", file=sys.stderr)
            return 1
        started = time.monotonic()
        dr = dag.test(run_conf=json.loads(conf) if conf else None)
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
        print(f"{sym:8} {day!s:>10} {close:9.2f} {_f(sma20, 9)} {_f(sma200, 9)} {_f(rsi, 7, 1)} {_f(hist, 9, 3)}"
              f" {_f(atr, 7)}")
    report_quality_and_trading(dsn)


def _f(value: float | None, width: int, digits: int = 2) -> str:
    return f"{value:{width}.{digits}f}" if value is not None else f"{'-':>{width}}"


def report_quality_and_trading(dsn: str) -> None:
    """Verdicts, the last trading run's signals and orders, and where its MLflow run is."""
    import os

    import psycopg2

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('quality.symbol_verdicts') IS NOT NULL,"
                    " to_regclass('trading.order_intents') IS NOT NULL")
        has_verdicts, has_intents = cur.fetchone()
        verdicts, intents = [], []
        if has_verdicts:
            cur.execute("SELECT DISTINCT ON (symbol) symbol, verdict, reasons FROM quality.symbol_verdicts"
                        " ORDER BY symbol, checked_at DESC")
            verdicts = cur.fetchall()
        if has_intents:
            cur.execute("SELECT symbol, side, quantity, limit_price, status, mode, intent_id, mlflow_run_id, run_id"
                        " FROM trading.order_intents ORDER BY created_at DESC LIMIT 10")
            intents = cur.fetchall()
    if verdicts:
        print("\nData-quality verdicts (quality.symbol_verdicts, Great Expectations):")
        for symbol, verdict, reasons in verdicts:
            print(f"  {symbol:8} {verdict:5} {'; '.join(reasons[:2])}")
    run = _last_trading_run()
    if run is not None:
        from include.tracking import client, run_url

        mlflow = client()
        path = mlflow.download_artifacts(run.info.run_id, "signals/signals.json")
        print(f"\nSignals of {run.data.tags.get('dag_id')} run {run.data.tags.get('run_id')}"
              f" (strategy {run.data.params.get('strategy')}, mode {run.data.params.get('mode')}):")
        for sig in json.loads(Path(path).read_text()):
            print(f"  {sig['symbol']:8} {sig['action']:4} confidence {sig['confidence']:.2f}  {sig['rationale']}")
        print(f"MLflow run {run.info.run_id} ({run.info.status}): {run_url(run.info.run_id)}"
              f"  [make up serves this UI]")
    if intents:
        print("\nOrder intents (trading.order_intents; dry_run = recorded, never sent):")
        for symbol, side, qty, limit, status, mode, intent_id, *_ in intents:
            print(f"  {symbol:8} {side:4} {float(qty):6.0f} @ {_f(limit, 8)}  {status:10} {mode:8} cOID {intent_id}")
    elif run is not None:
        print("\nNo order intents: every signal was HOLD or vetoed by risk (see risk/risk_report.json in MLflow).")


def _last_trading_run():
    from include.tracking import client

    mlflow = client()
    experiments = [e.experiment_id for e in mlflow.search_experiments() if e.name.startswith("ibkr-strategy-")]
    if not experiments:
        return None
    runs = mlflow.search_runs(experiments, order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None


if __name__ == "__main__":
    migrate()
    code = run(sys.argv[1:])
    report()
    sys.exit(1 if code else 0)
