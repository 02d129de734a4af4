"""Run DAGs end to end with ``dag.test()`` against the configured stack, then report what landed.

Usage (inside the local stack's environment, see ``scripts/demo.py``); a conf follows the DAG id after ``=``:
    python -m scripts.run_dags ibkr_ingest_daily_bars 'ibkr_trading_strategy={"strategy_id": 1}'

Progress (one line per task as it finishes, one per DAG run) and the final report go to stdout, or to the file
descriptor in ``RUN_DAGS_PROGRESS_FD`` when set: ``make demo`` points that at its terminal and this process's
stdout/stderr (dbt, Cosmos, Airflow, GX) at a log file.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from pluggy import HookimplMarker

# airflow.listeners.hookimpl is this marker; importing airflow here would configure it before the caller's env is set
hookimpl = HookimplMarker("airflow")
REPO = Path(__file__).resolve().parents[1]
PROGRESS_FD_ENV = "RUN_DAGS_PROGRESS_FD"
TASK_COLUMN_MAX = 50  # Cosmos test task ids reach ~90 characters; longer ids are shortened on screen only
STATE_LABELS = {"success": "ok", "failed": "FAILED", "upstream_failed": "not run (upstream failed)"}


def progress_stream() -> TextIO:
    fd = os.environ.get(PROGRESS_FD_ENV)
    return os.fdopen(int(fd), "w", buffering=1) if fd else sys.stdout


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def task_line(dag_id: str, task_id: str, state: str, seconds: float | None, width: int) -> str:
    """``  ibkr_ingest_daily_bars  fetch_bars  ok   3.2 s``: one task instance, columns aligned within its DAG."""
    label = STATE_LABELS.get(state, state)
    took = f"{seconds:6.1f} s" if seconds is not None else ""
    return f"  {dag_id}  {_short(task_id, TASK_COLUMN_MAX):<{width}}  {label:<7} {took}".rstrip()


def first_line(error: object) -> str:
    lines = [line.strip() for line in str(error or "").splitlines() if line.strip()]
    return _short(f"{type(error).__name__}: {lines[0]}" if isinstance(error, BaseException) and lines
                  else (lines[0] if lines else "failed"), 160)  # fmt: skip


class TaskProgress:
    """An Airflow listener printing one line per task instance of the running DAG as it finishes."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.dag_id = ""
        self.width = 0
        self.started: dict[tuple[str, int], float] = {}
        self.reported: set[tuple[str, int]] = set()
        self.errors: list[str] = []

    def begin(self, dag: Any) -> None:
        self.dag_id = dag.dag_id
        self.width = min(TASK_COLUMN_MAX, max((len(t) for t in dag.task_ids), default=10))
        self.started.clear()
        self.reported.clear()

    def _key(self, ti: Any) -> tuple[str, int]:
        return ti.task_id, getattr(ti, "map_index", -1)

    def _finish(self, ti: Any, state: str, error: object = None) -> None:
        key = self._key(ti)
        started = self.started.get(key)
        seconds = time.monotonic() - started if started is not None else None
        task_id = ti.task_id if key[1] < 0 else f"{ti.task_id}[{key[1]}]"
        self.out.write(task_line(self.dag_id, task_id, state, seconds, self.width) + "\n")
        if error is not None:
            self.errors.append(f"{self.dag_id}.{task_id}: {first_line(error)}")
            self.out.write(f"      {first_line(error)}\n")
        self.reported.add(key)

    # The listener hooks (pluggy matches them by name and argument names).
    @hookimpl
    def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
        self.started.setdefault(self._key(task_instance), time.monotonic())  # a deferred task resumes: keep the start

    @hookimpl
    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        self._finish(task_instance, "success")

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        self._finish(task_instance, "failed", error)

    @hookimpl
    def on_task_instance_skipped(self, previous_state: Any, task_instance: Any) -> None:
        self._finish(task_instance, "skipped")

    def end(self, dag_run: Any) -> None:
        """Tasks that never ran (skipped by a trigger rule, upstream failed) get their line after the run."""
        for ti in sorted(dag_run.get_task_instances(), key=lambda t: (t.start_date is None, t.start_date or 0)):
            if self._key(ti) not in self.reported:
                self._finish(ti, str(getattr(ti.state, "value", ti.state)))


def migrate() -> None:
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, stdout=subprocess.DEVNULL)


def run(dag_ids: list[str], out: TextIO = sys.stdout) -> int:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.listener import get_listener_manager

    from include.dbt_project import ensure_manifest
    from scripts import airflow_objects

    started = time.monotonic()
    migrate()
    airflow_objects.apply()
    ensure_manifest(force=True)  # the Cosmos DAG renders from dbt's manifest
    bag = DagBag(dag_folder=str(REPO / "dags"))
    if bag.import_errors:
        for path, err in bag.import_errors.items():
            out.write(f"import error in {path}:\n{err}\n")
        return 1
    out.write(f"setup: metadata DB migrated, pools and variables applied, dbt manifest parsed, {len(bag.dags)} DAGs"
              f" loaded ({time.monotonic() - started:.1f} s)\n")
    progress = TaskProgress(out)
    get_listener_manager().add_listener(progress)
    failed = 0
    for spec in dag_ids:
        dag_id, _, conf = spec.partition("=")
        dag = bag.dags.get(dag_id)
        if dag is None:
            out.write(f"unknown DAG {dag_id!r}; known: {sorted(bag.dag_ids)}\n")
            return 1
        for task in dag.tasks:
            task.retries = 0  # a one-shot run reports a failure at once, not after the DAG's retry delays
        progress.begin(dag)
        started = time.monotonic()
        dr = dag.test(run_conf=json.loads(conf) if conf else None)
        progress.end(dr)
        state = str(getattr(dr.state, "value", dr.state))
        out.write(f"{dag_id}: {state} in {time.monotonic() - started:.1f} s\n")
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
    print(f"\nMarket data in {mask_url(dsn)} (raw.daily_bars, raw.market_snapshots, raw.load_audit)")
    print(f"{'symbol':8} {'bars':>6} {'first':>10} {'last':>10} {'last load (ins/upd/same)':>26}"
          f" {'snapshots':>9}  source")
    for symbol, n, first, lastd, source in bars:
        ins, upd, same = last.get(symbol, (0, 0, 0))
        print(f"{symbol:8} {n:6d} {first!s:>10} {lastd!s:>10} {f'{ins}/{upd}/{same}':>26}"
              f" {snaps.get(symbol, (0, None))[0]:9d}  {source}")
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('analytics_marts.fct_latest_features') IS NOT NULL")
        if not cur.fetchone()[0]:
            return
        cur.execute("SELECT symbol, session_date, close, sma_20, sma_200, rsi_14, macd_hist, atr_14"
                    " FROM analytics_marts.fct_latest_features ORDER BY symbol")
        rows = cur.fetchall()
    print("Latest features (analytics_marts.fct_latest_features, dbt via Cosmos):")
    print(f"{'symbol':8} {'session':>10} {'close':>9} {'sma_20':>9} {'sma_200':>9} {'rsi_14':>7} {'macd_hist':>9}"
          f" {'atr_14':>7}")
    for sym, day, close, sma20, sma200, rsi, hist, atr in rows:
        print(f"{sym:8} {day!s:>10} {close:9.2f} {_f(sma20, 9)} {_f(sma200, 9)} {_f(rsi, 7, 1)} {_f(hist, 9, 3)}"
              f" {_f(atr, 7)}")
    report_quality_and_trading(dsn)


def _f(value: float | None, width: int, digits: int = 2) -> str:
    return f"{value:{width}.{digits}f}" if value is not None else f"{'-':>{width}}"


def report_quality_and_trading(dsn: str) -> None:
    """Verdicts, the last trading run's signals and order intents, and where its MLflow run is."""
    import psycopg2

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('quality.symbol_verdicts') IS NOT NULL")
        verdicts = []
        if cur.fetchone()[0]:
            cur.execute("SELECT DISTINCT ON (symbol) symbol, verdict, reasons FROM quality.symbol_verdicts"
                        " ORDER BY symbol, checked_at DESC")
            verdicts = cur.fetchall()
    if verdicts:
        print("Data-quality verdicts (quality.symbol_verdicts, Great Expectations):")
        for symbol, verdict, reasons in verdicts:
            print(f"  {symbol:8} {verdict:5} {'; '.join(reasons[:2])}".rstrip())
    run = _last_trading_run()
    if run is None:
        return
    from include.tracking import client, run_url

    mlflow = client()
    run_id = run.data.tags.get("run_id")
    path = mlflow.download_artifacts(run.info.run_id, "signals/signals.json")
    print(f"Signals of {run.data.tags.get('dag_id')} run {run_id}"
          f" (strategy {run.data.params.get('strategy')}, mode {run.data.params.get('mode')}):")
    for sig in json.loads(Path(path).read_text()):
        print(f"  {sig['symbol']:8} {sig['action']:4} confidence {sig['confidence']:.2f}  {sig['rationale']}")
    params = run.data.params
    intents = _intents(dsn, run.data.tags.get("dag_id"), run_id, params.get("strategy_id"), params.get("session"),
                       params.get("mode"))
    if intents:
        print("Order intents of this run (trading.order_intents; dry_run = recorded, never sent):")
        for symbol, side, qty, limit, status, mode, intent_id, earlier in intents:
            print(f"  {symbol:8} {side:4} {float(qty):6.0f} @ {_f(limit, 8)}  {status:10} {mode:8} cOID {intent_id}"
                  + ("  (decided by an earlier run of this session: one decision per symbol)" if earlier else ""))
    else:
        print("No order intents: every signal was HOLD or vetoed by risk (see risk/risk_report.json in MLflow).")
    print(f"MLflow run {run.info.run_id} ({run.info.status}): {run_url(run.info.run_id)}"
          f"  [make up serves this UI]")


def _intents(dsn: str, dag_id: str | None, run_id: str | None, strategy_id: str | None = None,
             session: str | None = None, mode: str | None = None) -> list[tuple]:
    """The order intents of one trading run, and those of its strategy, session and mode that an earlier run decided
    (the run found them and took no decision again: a repeated demo); the last column marks the earlier ones."""
    import psycopg2

    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('trading.order_intents') IS NOT NULL")
        if not cur.fetchone()[0] or not run_id:
            return []
        # The cOID sent to IBKR: its own column where the ledger has one, else the intent id.
        cur.execute("SELECT symbol, side, quantity, limit_price, status, mode, COALESCE(to_jsonb(i) ->> 'coid',"
                    " intent_id), NOT (dag_id = %s AND run_id = %s) FROM trading.order_intents i"
                    " WHERE (dag_id = %s AND run_id = %s)"
                    " OR (strategy_id = %s AND session_date = %s::date AND mode = %s)"
                    " ORDER BY created_at LIMIT 20", (dag_id, run_id, dag_id, run_id, strategy_id, session, mode))
        return cur.fetchall()


def _last_trading_run():
    from include.config import strategy_experiments
    from include.tracking import client

    mlflow = client()
    names = strategy_experiments()  # workflow.yaml's mlflow.experiment_name
    experiments = [e.experiment_id for e in mlflow.search_experiments() if e.name in names]
    if not experiments:
        return None
    runs = mlflow.search_runs(experiments, order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None


def main(argv: list[str]) -> int:
    out = progress_stream()
    code = run(argv, out)
    try:
        with contextlib.redirect_stdout(out):
            report()
    except Exception as exc:  # the report is a convenience: never hide the runs' outcome behind it
        out.write(f"\nreport failed: {first_line(exc)}\n")
        code = code or 1
    out.flush()
    return 1 if code else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
