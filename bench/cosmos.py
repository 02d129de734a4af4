"""P4: the Cosmos-rendered ``dbt_market`` group vs a bare ``dbt build`` of the same selection (every model but
``tag:portfolio``, as the group renders it), per execution mode and test behaviour; whether a failing error-severity
dbt test still fails its task and stops what is downstream; and the parse time of ``dags/market_data_models.py``.

BENCH_COSMOS_SYMBOLS x BENCH_COSMOS_YEARS of synthetic bars (default 50 x 2); every timed run is a daily run (one new
session per symbol, incremental marts). The bare build and each mode run in a fresh interpreter with its own Airflow
home (sqlite metadata DB), DAGs with ``dag.test()``; each once untimed first (Cosmos caches dbt's partial parse per
DAG), then BENCH_COSMOS_REPEATS timed runs (default 1). BENCH_COSMOS_ROUNDS rounds (default 3) alternate the bare
build and the modes, so load from elsewhere on the machine hits both; figures are medians over the rounds.
BENCH_COSMOS_MODES picks, e.g. ``local:build,local:after_each,watcher:none`` (default: the DAG's own, local:build);
``local:build:stock`` is the same without the project's operator arguments (Cosmos's operator as it comes).
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench.common import record, scratch_database
from bench.indicators import fill_bars  # the same random-walk bars as the indicator bench
from include.dbt_project import cosmos_task_group_kwargs
from scripts.devstack import LOCAL, REPO

SYMBOLS = int(os.environ.get("BENCH_COSMOS_SYMBOLS", "50"))
SESSIONS = int(os.environ.get("BENCH_COSMOS_YEARS", "2")) * 252
REPEATS = int(os.environ.get("BENCH_COSMOS_REPEATS", "1"))
ROUNDS = int(os.environ.get("BENCH_COSMOS_ROUNDS", "3"))
MODES = [m.split(":") for m in os.environ.get("BENCH_COSMOS_MODES", "local:build").split(",")]
DAG_FILE = REPO / "dags" / "market_data_models.py"

# One new session per symbol, loaded now (so the incremental models' loaded_at high-water mark picks it up).
_NEXT_SESSION = """
INSERT INTO raw.daily_bars (symbol, conid, session_date, open, high, low, close, volume, source)
SELECT symbol, 0, session_date + 1, close, close * 1.01, close * 0.99, close * 1.002, 1e6, 'bench'
FROM raw.daily_bars WHERE session_date = (SELECT max(session_date) FROM raw.daily_bars)
RETURNING session_date
"""


def _sql(dsn: str, *statements: str) -> list[tuple]:
    import psycopg2

    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
        return cur.fetchall() if cur.description else []


def _next_session(dsn: str) -> str:
    return _sql(dsn, _NEXT_SESSION)[0][0].isoformat()


# ---- child interpreter: dbt and DAG runs (Airflow reads its configuration at import time) -----------------------

def _bare_dbt(dsn: str, target: Path) -> dict:
    """``dbt build`` of the models the dbt_market group renders (the same exclusion), threads as in profiles.yml."""
    from dbt.cli.main import dbtRunner

    from include.dbt_project import DBT_PROJECT_DIR, OWN_DAG_SELECTORS, dbt_env
    from include.dbt_runtime import speed_up_dbt_adapter_start

    speed_up_dbt_adapter_start()  # as the Cosmos tasks do: the same dbt on both sides
    os.environ.update(dbt_env(dsn))
    args = ["build", "--exclude", *OWN_DAG_SELECTORS, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir",
            str(DBT_PROJECT_DIR), "--target-path", str(target), "--log-path", str(target / "logs"), "--quiet"]
    runner = dbtRunner()

    def timed() -> float:
        t0 = time.perf_counter()
        result = runner.invoke(args)
        assert result.success, result.exception
        return time.perf_counter() - t0

    cold = timed()  # full parse, creates every relation
    warm = []
    for _ in range(1 + REPEATS):  # the first warms dbt's partial parse at this target path
        _next_session(dsn)
        warm.append(timed())
    args += ["--threads", "1"]  # one model at a time, as dag.test() runs the group's tasks: context, not P4's B
    serial = []
    for _ in range(REPEATS):
        _next_session(dsn)
        serial.append(timed())
    return {"cold": cold, "warm": warm[1:], "serial": serial}


def _register(dag: object, dags_folder: Path) -> None:
    """dag.test() needs the DAG serialized in the metadata DB; the bench's DAGs have no file of their own."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=str(dags_folder))
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)


def _build_dag(mode: str, tests: str, stock: bool = False) -> object:
    """``stock``: Cosmos's operator as it comes (without include.dbt_project.COSMOS_OPERATOR_ARGS), for comparison."""
    from airflow.sdk import DAG, TriggerRule, task
    from cosmos import DbtTaskGroup

    kwargs = cosmos_task_group_kwargs(execution_mode=mode, test_behavior=tests)
    if stock:
        kwargs.pop("operator_args")
    with DAG(f"bench_cosmos_{mode}_{tests}{'_stock' * stock}", schedule=None, start_date=datetime(2025, 1, 2),
             catchup=False) as dag:
        group = DbtTaskGroup(group_id="dbt_market", **kwargs)

        @task
        def after_dbt() -> None:
            """Stands for the quality gate: must not run when a dbt test failed."""

        group >> after_dbt()
    if mode == "watcher":
        # dag.test() runs one task at a time: a consumer sensor picked before the producer would defer and wait for
        # it forever. Run the producer first; its consumers still start whatever its outcome (all_done).
        producer = dag.get_task("dbt_market.dbt_producer_watcher")
        for root in [t for t in dag.tasks if not t.upstream_task_ids and t is not producer]:
            producer >> root
            root.trigger_rule = TriggerRule.ALL_DONE
    return dag


def _run(dag: object) -> dict:
    t0 = time.perf_counter()
    dr = dag.test()
    wall = time.perf_counter() - t0
    tis = dr.get_task_instances()
    return {"wall": wall, "state": str(getattr(dr.state, "value", dr.state)), "tasks": len(tis),
            "task_seconds": sum(ti.duration or 0 for ti in tis),
            "states": {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in tis}}


def _failure_run(dsn: str, dag: object) -> dict:
    """A new session with one NULL open: not_null_stg_ibkr__daily_bars_open (error severity) fails."""
    _sql(dsn, "ALTER TABLE raw.daily_bars ALTER COLUMN open DROP NOT NULL")
    try:
        day = _next_session(dsn)
        _sql(dsn, f"UPDATE raw.daily_bars SET open = NULL WHERE session_date = '{day}'"
                  " AND symbol = (SELECT min(symbol) FROM raw.daily_bars)")
        run = _run(dag)
        run["mart_got_bad_session"] = bool(_sql(
            dsn, f"SELECT count(*) FROM analytics_marts.fct_daily_indicators WHERE session_date = '{day}'")[0][0])
        return run
    finally:
        _sql(dsn, "UPDATE raw.daily_bars SET open = close WHERE open IS NULL",
             "ALTER TABLE raw.daily_bars ALTER COLUMN open SET NOT NULL")


def _child(dsn: str, what: str, out: Path, failure: bool) -> None:
    """One interpreter per measurement: dag.test() runs every task in this process, whose heap (and so the
    gc.collect() Cosmos runs after each dbt invocation) grows from one DAG run to the next."""
    from airflow.sdk import DAG, task

    from include.dbt_project import ensure_manifest

    home = Path(os.environ["AIRFLOW_HOME"])
    if what == "bare":
        ensure_manifest(force=True)  # what Cosmos renders from, current with the models
        out.write_text(json.dumps(_bare_dbt(dsn, home / "dbt-target")))
        return
    with DAG("bench_cosmos_empty", schedule=None, start_date=datetime(2025, 1, 2), catchup=False) as empty:
        @task
        def noop() -> None:
            """dag.test() starts the in-process execution API on its first run."""

        noop()
    _register(empty, home / "dags")
    result: dict = {"first_dag_test": _run(empty)["wall"], "empty_dag_test": _run(empty)["wall"]}
    mode, tests, *variant = what.split(":")
    dag = _build_dag(mode, tests, stock=variant == ["stock"])
    _register(dag, home / "dags")
    runs = []
    for _ in range(1 + REPEATS):
        _next_session(dsn)
        runs.append(_run(dag))
    assert all(r["state"] == "success" for r in runs), [r["states"] for r in runs]
    result.update(first=runs[0], warm=runs[1:], failure=_failure_run(dsn, dag) if failure else None)
    out.write_text(json.dumps(result))


# ---- parent: data, isolated Airflow home, report -----------------------------------------------------------------

_PARSE_IMPORT = """
import importlib.util, json, time
t0 = time.perf_counter()
import airflow.sdk
t1 = time.perf_counter()
spec = importlib.util.spec_from_file_location("market_data_models", {path!r})
spec.loader.exec_module(importlib.util.module_from_spec(spec))
t2 = time.perf_counter()
print(json.dumps({{"airflow": t1 - t0, "file": t2 - t1}}))
"""
_PARSE_DAGBAG = """
import json, time
from airflow.dag_processing.dagbag import DagBag
t0 = time.perf_counter()
bag = DagBag(dag_folder={path!r})
t1 = time.perf_counter()
assert not bag.import_errors, bag.import_errors
print(json.dumps({{"dagbag": t1 - t0, "file": sum(s.duration.total_seconds() for s in bag.dagbag_stats)}}))
"""


def _parse_times(env: dict[str, str], runs: int = 3) -> dict:
    """Best of ``runs`` fresh interpreters for each way of loading the DAG file."""
    best: dict = {}
    for name, code in (("import", _PARSE_IMPORT), ("dagbag", _PARSE_DAGBAG)):
        samples = [json.loads(subprocess.run([sys.executable, "-c", code.format(path=str(DAG_FILE))], env=env,
                                             cwd=REPO, capture_output=True, text=True, check=True)
                              .stdout.strip().splitlines()[-1]) for _ in range(runs)]
        best[name] = min(samples, key=lambda s: s["file"])
    return best


def _airflow_env(home: Path, dsn: str) -> dict[str, str]:
    (home / "dags").mkdir(parents=True)
    return {**os.environ, "PYTHONPATH": str(REPO), "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"), "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False", "AIRFLOW__API_AUTH__JWT_SECRET": "bench-" + "x" * 58,
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False", "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "AIRFLOW_CONN_MARKET_DB": dsn,
            "NO_PROXY": "127.0.0.1,localhost"}


def _with_password(dsn: str) -> str:
    """Cosmos's Postgres profile mapping insists on a password, even with trust auth."""
    scheme, _, rest = dsn.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if at and ":" not in userinfo:
        return f"{scheme}://{userinfo}:postgres@{host}"
    return dsn


def _failure_summary(run: dict) -> str:
    states = run["states"]
    failed = sorted(t.removeprefix("dbt_market.") for t, s in states.items() if s == "failed")
    stopped = sum(s == "upstream_failed" for s in states.values())
    return (f"run {run['state']}; failed: {', '.join(failed) or 'none'}; upstream_failed: {stopped}; "
            f"after_dbt {states.get('after_dbt')}; mart got the bad session: {run['mart_got_bad_session']}")


def _median(values: list[float]) -> float:
    import statistics

    return statistics.median(values)


def _report(r: dict) -> None:
    print(f"{SYMBOLS} symbols x {SESSIONS} sessions; each timed run adds one session per symbol (daily incremental); "
          f"medians over {ROUNDS} rounds alternating bare and Cosmos")
    if not r.get("bare"):
        return
    bare_runs = [w for b in r["bare"] for w in b["warm"]]
    bare = _median(bare_runs)
    print(f"bare dbt build of the same selection (dbtRunner, threads 4): warm {bare:.2f} s ("
          + ", ".join(f"{s:.2f}" for s in bare_runs) + f"), cold {r['bare'][0]['cold']:.2f} s")
    serial = _median([w for b in r["bare"] for w in b.get("serial", [])] or [float("nan")])
    print(f"the same with --threads 1 (one model at a time, as dag.test() runs the tasks): warm {serial:.2f} s")
    default = tuple(p.default for n, p in inspect.signature(cosmos_task_group_kwargs).parameters.items()
                    if n in ("execution_mode", "test_behavior"))
    modes = [(" + ".join(m) + (" *" if tuple(m) == default else ""), r[":".join(m)])
             for m in MODES if r.get(":".join(m))]
    if modes:
        firsts = [m["first_dag_test"] for _, ms in modes for m in ms]
        print(f"dag.test() itself, one fresh interpreter per mode and round: first call {min(firsts):.1f}-"
              f"{max(firsts):.1f} s (execution API start-up, not counted below), then "
              f"{_median([m['empty_dag_test'] for _, ms in modes for m in ms]):.2f} s for a 1-task DAG")
    print(f"{'mode':24} {'tasks':>5} {'first':>7} {'warm':>7} {'in tasks':>8} {'x bare':>7}  (goal <= 1.5x)")
    for name, ms in modes:
        warm = _median([w["wall"] for m in ms for w in m["warm"]])
        print(f"{name:24} {ms[0]['first']['tasks']:5d} {_median([m['first']['wall'] for m in ms]):6.2f}s "
              f"{warm:6.2f}s {_median([w['task_seconds'] for m in ms for w in m['warm']]):7.2f}s {warm / bare:6.2f}x")
        if name.endswith("*"):
            print(f"P4 dbt_market under Cosmos (dag.test) / bare dbt build: {warm:.2f} s / {bare:.2f} s = "
                  f"{warm / bare:.2f}x (goal <= 1.5x); {warm / serial:.2f}x the bare build with --threads 1")
            record("P4", f"dbt_market Cosmos group ({name.rstrip(' *')}, dag.test()) / bare dbtRunner build, "
                         f"{SYMBOLS} symbols x {SESSIONS} sessions, daily run",
                   f"{warm / bare:.2f}x ({warm:.2f} s vs {bare:.2f} s)", "<= 1.5x", warm / bare <= 1.5)
    print("(* = the default of include.dbt_project.cosmos_task_group_kwargs)")
    print("forced failing error-severity test (NULL open on one symbol's new session):")
    for name, ms in modes:
        print(f"  {name:24} {_failure_summary(ms[0]['failure'])}")


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="bench-cosmos-"))
    log_path = LOCAL / "bench-cosmos.log"
    try:
        with scratch_database("bench_cosmos") as dsn:
            dsn = _with_password(dsn)
            fill_bars(dsn, SYMBOLS, SESSIONS)
            env = _airflow_env(home, dsn)
            t0 = time.perf_counter()
            subprocess.run([str(Path(sys.executable).with_name("airflow")), "db", "migrate"], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            print(f"airflow db migrate (sqlite): {time.perf_counter() - t0:.1f} s", flush=True)
            LOCAL.mkdir(exist_ok=True)
            results: dict[str, list[dict]] = {}
            with open(log_path, "wb") as log:
                for round_ in range(ROUNDS):
                    for what in ["bare", *(":".join(m) for m in MODES)]:
                        out = home / f"{what.replace(':', '_')}.json"
                        child = subprocess.run([sys.executable, "-m", "bench.cosmos", "--child", dsn, what, str(out),
                                                "failure" if round_ == 0 else "-"],
                                               env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
                        if child.returncode == 0:
                            results.setdefault(what, []).append(json.loads(out.read_text()))
                        else:
                            print(f"{what}: exit {child.returncode}, see {log_path}", flush=True)
            _report(results)
        p = _parse_times(env)
        print(f"parse of {DAG_FILE.relative_to(REPO)} (best of 3 fresh interpreters; goal < 0.5 s):")
        print(f"  import of the file after airflow.sdk: {p['import']['file']:.3f} s "
              f"(import airflow.sdk first: {p['import']['airflow']:.2f} s)")
        print(f"  DagBag processing of the file: {p['dagbag']['file']:.3f} s ({p['dagbag']['dagbag']:.3f} s DagBag())")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2], sys.argv[3], Path(sys.argv[4]), sys.argv[5:6] == ["failure"])
    else:
        main()
