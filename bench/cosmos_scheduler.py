"""P4 under the real scheduler: the Cosmos ``dbt_market`` group run by ``make up``'s stack (API server, dag-processor,
scheduler with LocalExecutor: one process per task) vs a bare ``dbt build`` command of the same selection.

Like for like: each side is what a user would run daily, one new session per symbol (incremental marts), both warm
(partial parse cached) and alternating, so load from elsewhere hits both. The group's time runs from its first
task being queued to its last task's end; the bare command's from process start to exit. BENCH_P4_SYMBOLS x
BENCH_P4_YEARS of synthetic bars (default 50 x 2), BENCH_P4_ROUNDS (default 3), BENCH_P4_MODES (default
``local:build,watcher:none``: the DAG's own mode, and Cosmos's watcher with its sensors polling every
BENCH_P4_POKE_INTERVAL s, default 1; a triggerer runs for it).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

from bench.common import record, scratch_database
from bench.cosmos import _next_session, _with_password
from bench.indicators import fill_bars
from scripts.devstack import LOCAL

REPO = Path(__file__).resolve().parents[1]
SYMBOLS = int(os.environ.get("BENCH_P4_SYMBOLS", "50"))
SESSIONS = int(os.environ.get("BENCH_P4_YEARS", "2")) * 252
ROUNDS = int(os.environ.get("BENCH_P4_ROUNDS", "3"))
MODES = [m.split(":") for m in os.environ.get("BENCH_P4_MODES", "local:build,watcher:none").split(",")]
POKE = float(os.environ.get("BENCH_P4_POKE_INTERVAL", "1"))  # watcher mode's consumer sensors

# One DAG per mode: the dbt_market group exactly as dags/market_data_models.py renders it (cosmos_task_group_kwargs).
DAG_FILE = '''
from datetime import datetime
from airflow.sdk import DAG
from cosmos import DbtTaskGroup
from include.dbt_project import cosmos_task_group_kwargs

for mode, tests in {modes!r}:
    with DAG(f"bench_p4_{{mode}}_{{tests}}", schedule=None, start_date=datetime(2025, 1, 2), catchup=False) as dag:
        DbtTaskGroup(group_id="dbt_market", **cosmos_task_group_kwargs(execution_mode=mode, test_behavior=tests))
    for t in dag.tasks:  # watcher: the consumer sensors' (and their triggers') poll interval
        if mode == "watcher" and hasattr(t, "poke_interval") and "producer" not in t.task_id:
            t.poke_interval = {poke}
    globals()[dag.dag_id] = dag
'''


def _bare(dsn: str, target: Path) -> float:
    """``dbt build`` as a command (a fresh process, as cron or a BashOperator would run it)."""
    from include.dbt_project import DBT_PROJECT_DIR, OWN_DAG_SELECTORS, dbt_env

    argv = [str(Path(sys.executable).with_name("dbt")), "build", "--exclude", *OWN_DAG_SELECTORS,
            "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path",
            str(target), "--log-path", str(target / "logs"), "--quiet"]
    t0 = time.perf_counter()
    subprocess.run(argv, env={**os.environ, **dbt_env(dsn), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}, check=True,
                   cwd=REPO)
    return time.perf_counter() - t0


def _parse(ts: str | None) -> datetime | None:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")) if ts else None


def _group_seconds(stack: object, dag_id: str, run_id: str) -> tuple[float, int, dict[str, float]]:
    tis = [t for t in stack.http("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
           if t["task_id"].startswith("dbt_market.")]
    bad = {t["task_id"]: t["state"] for t in tis if t["state"] != "success"}
    if bad:
        raise RuntimeError(f"{dag_id} {run_id}: {bad}")
    start = min(_parse(t.get("queued_when")) or _parse(t["start_date"]) for t in tis)
    end = max(_parse(t["end_date"]) for t in tis)
    return (end - start).total_seconds(), len(tis), {t["task_id"].removeprefix("dbt_market."): t["duration"]
                                                      for t in tis}


def main() -> None:
    from include.dbt_project import ensure_manifest
    from tests.dags.scheduler_stack import SchedulerStack

    tag = uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory(prefix="bench-p4-") as tmp, scratch_database(f"p4_market_{tag}") as dsn, \
            scratch_database(f"p4_airflow_{tag}") as metadata_url:
        work = Path(tmp)
        fill_bars(dsn, SYMBOLS, SESSIONS)
        ensure_manifest(force=True)
        target = work / "bare-target"
        print(f"{SYMBOLS} symbols x {SESSIONS} sessions; cold bare build (creates the relations): "
              f"{_bare(dsn, target):.1f} s", flush=True)
        dags = work / "dags"
        dags.mkdir()
        (dags / "bench_p4.py").write_text(DAG_FILE.format(modes=[tuple(m) for m in MODES], poke=POKE))
        env = {"MARKET_DB_URL": dsn, "AIRFLOW_CONN_MARKET_DB": _with_password(dsn),
               "AIRFLOW__COSMOS__CACHE_DIR": str(work / "cosmos"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
               "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
               **{k: v for k, v in os.environ.items() if k.startswith("AIRFLOW__SCHEDULER__")}}
        stack = SchedulerStack(work, metadata_url, env, dags_folder=dags,
                               triggerer=any(mode == "watcher" for mode, _ in MODES)).start()
        try:
            results: dict[str, list[float]] = {}
            bare: list[float] = []
            for mode, tests in MODES:
                dag_id = f"bench_p4_{mode}_{tests}"
                stack.dag_ready(dag_id)
                _next_session(dsn)  # untimed first run: Cosmos caches dbt's partial parse per DAG
                stack.wait_run(dag_id, stack.trigger(dag_id, {}, "warm_up"), timeout=900)
            for round_ in range(ROUNDS):
                _next_session(dsn)
                bare.append(_bare(dsn, target))
                for mode, tests in MODES:
                    dag_id = f"bench_p4_{mode}_{tests}"
                    _next_session(dsn)
                    run_id = stack.trigger(dag_id, {}, f"round_{round_}")
                    state = stack.wait_run(dag_id, run_id, timeout=900)
                    seconds, tasks, durations = _group_seconds(stack, dag_id, run_id)
                    results.setdefault(f"{mode}:{tests}", []).append(seconds)
                    print(f"round {round_ + 1}: bare {bare[-1]:.2f} s; {mode}:{tests} {state} {seconds:.2f} s "
                          f"({tasks} tasks: " + ", ".join(f"{k} {v:.1f}" for k, v in durations.items()) + ")",
                          flush=True)
        finally:
            stack.stop()
            shutil.rmtree(LOCAL / "bench-p4-logs", ignore_errors=True)
            shutil.copytree(work / "airflow" / "logs", LOCAL / "bench-p4-logs", dirs_exist_ok=True)
            shutil.copytree(work / "logs-processes", LOCAL / "bench-p4-logs" / "processes", dirs_exist_ok=True)
        b = statistics.median(bare)
        print(f"bare `dbt build` command, same selection: median {b:.2f} s")
        for name, values in results.items():
            m = statistics.median(values)
            print(f"P4 (real scheduler, LocalExecutor) dbt_market {name}: {m:.2f} s / {b:.2f} s = {m / b:.2f}x "
                  "(goal <= 1.5x)")
            default = " (the DAG's mode)" if name == "local:build" else " (not the DAG's mode)"
            record("P4", f"dbt_market Cosmos group ({name}{default}) under the real scheduler (LocalExecutor) / bare "
                         f"`dbt build` command, {SYMBOLS} symbols x {SESSIONS} sessions, daily run",
                   f"{m / b:.2f}x ({m:.1f} s vs {b:.1f} s)", "<= 1.5x", m / b <= 1.5)


if __name__ == "__main__":
    main()
