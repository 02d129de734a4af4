"""``make scaleout``: the pipeline on Airflow's CeleryExecutor with two Celery workers, then everything stopped.

Runs against the machine's Redis (broker) and PostgreSQL (metadata DB, Celery results, market data):

1. creates two throw-away databases (Airflow metadata, market data) on ``SCALEOUT_PG_ADMIN_URL``
   (default ``postgresql://postgres@127.0.0.1:5432/postgres``; an embedded pgserver cluster when that server is
   not reachable) and a fresh ``AIRFLOW_HOME`` in a temp dir; migrates it, creates the pools;
2. starts the IBKR simulator, ``airflow api-server`` (free port), ``scheduler``, ``dag-processor`` and two
   ``airflow celery worker`` processes (``-H worker1@%h``, ``-H worker2@%h``, concurrency 2 each; ``--workers``,
   ``--concurrency``);
3. triggers ``ibkr_ingest_daily_bars`` → ``market_data_models`` → ``ibkr_trading_strategy`` (strategy 1, dry
   run) for the symbols through the REST API and waits for each run (bounded by ``--timeout``);
4. checks from the metadata DB that task instances ran on both workers, prints a summary (and one
   ``SCALEOUT_SUMMARY {json}`` line), then stops what it started by PID (process groups it created) and drops
   the databases and its Redis keys.

Redis is shared with whatever else uses it: every key and channel of this run lives under a unique
``global_keyprefix`` on a unique queue (``SCALEOUT_REDIS_URL``, default ``redis://127.0.0.1:6379/7``), and only
those keys are deleted at the end. Without a reachable Redis the script stops with exit code 2.

Two workers on one machine report the same FQDN, so the workers' tasks record ``worker1``/``worker2`` as their
``hostname`` (``[core] hostname_callable`` = :func:`worker_hostname`); on separate machines the default FQDN
already tells them apart.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from scripts.devstack import free_port, manifest_command

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("SCALEOUT_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("SCALEOUT_REDIS_URL", "redis://127.0.0.1:6379/7")
DEFAULT_SYMBOLS = ["TSLA", "NVDA", "AAPL", "MSFT"]
SUMMARY_PREFIX = "SCALEOUT_SUMMARY "
INGEST, MODELS, TRADE = "ibkr_ingest_daily_bars", "market_data_models", "ibkr_trading_strategy"
EXIT_NO_BROKER = 2


def worker_hostname() -> str:
    """``[core] hostname_callable`` of this run: the worker's name, so two workers on one machine differ."""
    return os.environ.get("SCALEOUT_WORKER_NAME") or socket.getfqdn()


class ScaleoutError(RuntimeError):
    pass


class NoBrokerError(ScaleoutError):
    pass


def log(msg: str) -> None:
    print(f"[scaleout {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def redis_reachable(url: str = REDIS_URL) -> str | None:
    """None when Redis answers PING, else why not."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
        client.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def postgres_reachable(url: str = PG_ADMIN_URL) -> str | None:
    import psycopg2

    try:
        psycopg2.connect(url, connect_timeout=3).close()
    except psycopg2.Error as exc:
        return str(exc).strip()
    return None


def _with_db(admin_url: str, name: str, password: bool = False) -> str:
    """``admin_url`` pointing at database ``name`` (with a dummy password: Cosmos's profile insists on one)."""
    base = admin_url.rpartition("/")[0]
    userinfo = base.split("//", 1)[1].split("@", 1)[0] if "@" in base else ""
    if password and "@" in base and ":" not in userinfo:
        base = base.replace("@", ":postgres@", 1)
    return f"{base}/{name}"


def _admin(url: str, sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(url, connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def _clean_base_env() -> dict[str, str]:
    """This process's environment without any Airflow configuration: the run must not inherit a caller's."""
    drop = ("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "_TESTS_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop) and k != "AIRFLOW_HOME"}


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path})"


def _parse_ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class Scaleout:
    """One run: what it started is registered on ``self.cleanup`` as it starts, and stopped in reverse order."""

    def __init__(self, symbols: list[str], timeout: float, keep: bool, workers: int = 2, concurrency: int = 2) -> None:
        self.symbols = symbols
        self.workers = [f"worker{i}" for i in range(1, workers + 1)]
        self.concurrency = concurrency
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.keep = keep
        self.cleanup = contextlib.ExitStack()
        self.tag = uuid.uuid4().hex[:8]
        self.workdir = Path(tempfile.mkdtemp(prefix=f"scaleout-{self.tag}-"))
        # scripts.devstack keeps its files (simulator log, Airflow home) here instead of the repo's .local/.
        os.environ["LOCAL_STACK_DIR"] = str(self.workdir)
        self.logs = self.workdir / "process-logs"
        self.logs.mkdir()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.env: dict[str, str] = {}
        self.api = ""
        self.token = ""
        self.metadata_url = ""

    # --- infrastructure -----------------------------------------------------------------------------------------
    def _databases(self) -> tuple[str, str]:
        admin_url = PG_ADMIN_URL
        if (why := postgres_reachable(admin_url)) is not None:
            from scripts.devstack import EmbeddedPostgres

            log(f"PostgreSQL at {admin_url} not reachable ({why.splitlines()[0]}); starting an embedded one")
            pgdata = Path(tempfile.mkdtemp(prefix="pg-", dir="/tmp"))  # short path: unix socket names are limited
            self.cleanup.callback(shutil.rmtree, pgdata, True)
            server = EmbeddedPostgres(pgdata, port=free_port()).start()
            self.cleanup.callback(server.stop)
            admin_url = server.dsn()
        names = {"airflow": f"scaleout_airflow_{self.tag}", "market": f"scaleout_market_{self.tag}"}
        for name in names.values():
            _admin(admin_url, f'CREATE DATABASE "{name}"')
            self.cleanup.callback(_admin, admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        from include.settings import mask_url

        log(f"throw-away databases {', '.join(names.values())} on {mask_url(_with_db(admin_url, ''))}")
        from include.marketdata import db

        market_url = _with_db(admin_url, names["market"], password=True)
        with db.connection(market_url) as conn:
            db.ensure_schema(conn)
        return _with_db(admin_url, names["airflow"]), market_url

    def _redis_cleanup(self, prefix: str) -> None:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
        client.close()
        log(f"deleted {len(keys)} Redis keys under {prefix!r}")

    def _environment(self, market_url: str, gateway_url: str) -> dict[str, str]:
        from scripts.devstack import airflow_env

        api_port = free_port()
        self.api = f"http://127.0.0.1:{api_port}"
        self.metadata_url = self.metadata_url.replace("postgresql://", "postgresql+psycopg2://", 1)
        prefix = f"airflow-scaleout-{self.tag}:"
        self.redis_prefix = prefix
        env = {
            **_clean_base_env(),
            **airflow_env(market_url, gateway_url, None),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(self.workdir / "airflow"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_url,
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            # The scheduler's cap on running tasks across all workers.
            "AIRFLOW__CORE__PARALLELISM": str(max(8, len(self.workers) * self.concurrency)),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api}/execution/",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "scripts.celery_scaleout.worker_hostname",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": self.api,
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            # Scheduled (timetable) and Asset-triggered runs off: this run triggers exactly the three DAG runs.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__CELERY__BROKER_URL": REDIS_URL,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{self.metadata_url}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.concurrency),
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": prefix,
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "3600",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": f"scaleout_{self.tag}",
            "STOCK_SYMBOLS": ",".join(self.symbols),
            "MLFLOW_TRACKING_URI": f"sqlite:///{self.workdir / 'mlflow' / 'mlflow.db'}",
            "QUALITY_REPORTS_DIR": str(self.workdir / "quality"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        }
        (self.workdir / "mlflow").mkdir()
        return env

    def _run(self, name: str, argv: list[str], timeout: float = 300) -> None:
        with open(self.logs / f"{name}.log", "ab") as out:
            code = subprocess.call(argv, env=self.env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
        if code:
            raise ScaleoutError(f"{name} failed (exit {code}):\n{_tail(self.logs / f'{name}.log')}")

    def _start(self, name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> None:
        out = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child process
        self.cleanup.callback(out.close)
        # Its own process group: Ctrl-C reaches it only through us, and its children can be killed with it.
        proc = subprocess.Popen(
            argv,
            env={**self.env, **(extra_env or {})},
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        log(f"started {name} (pid {proc.pid})")

    def _stop_airflow(self, timeout: float = 60) -> None:
        """SIGTERM to every Airflow process at once (scheduler and dag-processor exit, Celery workers shut down
        warm: running tasks finish), wait, then SIGKILL whatever is left in each process group started here."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name, proc in self.procs.items():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"{name} (pid {proc.pid}) did not stop within {timeout:.0f} s; killing its process group")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # stragglers of that group (task processes, uvicorn children)
            proc.wait()

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise ScaleoutError(f"{name} exited with {proc.returncode}:\n{_tail(self.logs / f'{name}.log')}")
        if time.monotonic() > self.deadline:
            raise ScaleoutError(f"timed out after {self.timeout:.0f} s")

    def _wait(self, what: str, check, interval: float = 1.0) -> Any:
        while True:
            self._check_alive()
            try:
                if result := check():
                    return result
            except ScaleoutError:
                raise
            except Exception:
                pass
            time.sleep(interval)

    # --- Airflow through its REST API -------------------------------------------------------------------------
    def _http(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        resp = httpx.request(method, f"{self.api}{path}", headers=headers, timeout=30, **kwargs)
        resp.raise_for_status()
        return resp.json() if resp.content else None

    def _login(self) -> bool:
        pw_file = Path(self.env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
        password = json.loads(pw_file.read_text())["admin"]
        self.token = self._http("POST", "/auth/token", json={"username": "admin", "password": password})["access_token"]
        return True

    def _workers_ready(self) -> bool:
        from celery import Celery

        app = Celery(broker=REDIS_URL)
        app.conf.broker_transport_options = {"global_keyprefix": self.redis_prefix}
        try:
            replies = app.control.ping(timeout=2) or []
        finally:
            app.close()
        names = {name.split("@", 1)[0] for reply in replies for name in reply}
        return set(self.workers) <= names

    def _dags_parsed(self) -> bool:
        errors = self._http("GET", "/api/v2/importErrors")
        if errors.get("total_entries"):
            details = "\n".join(f"{e['filename']}: {e['stack_trace'][-400:]}" for e in errors["import_errors"])
            raise ScaleoutError(f"DAG import errors:\n{details}")
        return all(self._http("GET", f"/api/v2/dags/{dag_id}") for dag_id in (INGEST, MODELS, TRADE))

    def _trigger_and_wait(self, dag_id: str, conf: dict[str, Any]) -> dict[str, Any]:
        run_id = f"scaleout__{self.tag}__{dag_id}"
        started = time.monotonic()
        self._http(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"dag_run_id": run_id, "logical_date": None, "conf": conf}
        )
        log(f"triggered {dag_id} {json.dumps(conf)}")

        def done() -> dict[str, Any] | None:
            run = self._http("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            return run if run["state"] in ("success", "failed") else None

        run = self._wait(f"{dag_id} run", done, interval=2)
        wall = time.monotonic() - started
        start, end = _parse_ts(run.get("start_date")), _parse_ts(run.get("end_date"))
        duration = (end - start).total_seconds() if start and end else None
        log(f"{dag_id}: {run['state']} in {duration or wall:.1f} s (trigger to done {wall:.1f} s)")
        return {
            "dag_id": dag_id,
            "run_id": run_id,
            "state": run["state"],
            "duration_s": duration,
            "wall_s": round(wall, 1),
        }

    # --- results from the metadata DB -------------------------------------------------------------------------
    def _task_instances(self, run_ids: list[str]) -> list[tuple]:
        import psycopg2

        with (
            contextlib.closing(psycopg2.connect(self.metadata_url.replace("+psycopg2", ""))) as conn,
            conn.cursor() as cur,
        ):
            cur.execute(
                "SELECT dag_id, run_id, task_id, map_index, state, hostname, start_date, end_date, try_number"
                " FROM task_instance WHERE run_id = ANY(%s)",
                (run_ids,),
            )
            return cur.fetchall()

    def _failed_task_logs(self, tis: list[tuple]) -> str:
        out = []
        for dag_id, run_id, task_id, map_index, state, host, *_rest, tries in tis:
            if state not in ("failed", "upstream_failed", "up_for_retry"):
                continue
            out.append(f"--- {dag_id}.{task_id}[{map_index}] {state} on {host} (try {tries})")
            base = (
                Path(self.env["AIRFLOW_HOME"]) / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
            )
            for path in sorted(base.rglob("*.log"))[-1:]:
                out.append(_tail(path, 30))
        return "\n".join(out)

    def summarize(self, runs: list[dict[str, Any]]) -> dict[str, Any]:
        tis = self._task_instances([r["run_id"] for r in runs])
        ran = [t for t in tis if t[6] is not None and t[5]]
        per_worker = Counter(t[5] for t in ran)
        for run in runs:
            mine = [t for t in ran if t[1] == run["run_id"]]
            run["tasks"] = len(mine)
            run["tasks_per_worker"] = dict(sorted(Counter(t[5] for t in mine).items()))
        # Most task instances running at the same moment, over the whole run (at most workers x concurrency).
        edges = sorted([(t[6], 1) for t in ran if t[7]] + [(t[7], -1) for t in ran if t[7]])
        running = peak = 0
        for _, step in edges:
            running += step
            peak = max(peak, running)
        return {
            "executor": "CeleryExecutor",
            "workers": list(self.workers),
            "concurrency_per_worker": self.concurrency,
            "symbols": self.symbols,
            "runs": runs,
            "tasks_per_worker": dict(sorted(per_worker.items())),
            "peak_parallel_tasks": peak,
            "all_success": all(r["state"] == "success" for r in runs),
            "workers_used": sum(per_worker.get(w, 0) > 0 for w in self.workers),
        }

    # --- the whole run -----------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from scripts.devstack import start_simulator, stop_process

        if (why := redis_reachable()) is not None:
            raise NoBrokerError(
                f"the CeleryExecutor needs a Redis broker; {REDIS_URL} is not reachable ({why}). "
                "Start Redis (e.g. `redis-server` or `apt-get install redis-server`) or set "
                "SCALEOUT_REDIS_URL."
            )
        self.metadata_url, market_url = self._databases()
        sim_port = free_port()
        simulator = start_simulator(sim_port)
        self.cleanup.callback(stop_process, simulator)
        self.env = self._environment(market_url, f"http://127.0.0.1:{sim_port}/v1/api")
        self.cleanup.callback(self._redis_cleanup, self.redis_prefix)
        log(
            f"AIRFLOW_HOME {self.env['AIRFLOW_HOME']}; broker {REDIS_URL} (key prefix {self.redis_prefix!r}, "
            f"queue {self.env['AIRFLOW__OPERATORS__DEFAULT_QUEUE']}); simulator pid {simulator.pid}"
        )

        t0 = time.monotonic()
        airflow = str(Path(sys.executable).with_name("airflow"))
        self._run("db-migrate", [airflow, "db", "migrate"])
        self._run("airflow-objects", [sys.executable, "-m", "scripts.airflow_objects"])
        self._run("dbt-manifest", manifest_command())
        log(f"metadata DB migrated, pools created, dbt manifest ready in {time.monotonic() - t0:.0f} s")

        t0 = time.monotonic()
        self.cleanup.callback(self._stop_airflow)
        self._start(
            "api-server",
            [airflow, "api-server", "--host", "127.0.0.1", "--port", self.env["AIRFLOW__API__PORT"], "--workers", "1"],
        )
        self._start("dag-processor", [airflow, "dag-processor"])
        for name in self.workers:
            self._start(
                name,
                [
                    airflow,
                    "celery",
                    "worker",
                    "-H",
                    f"{name}@%h",
                    "--concurrency",
                    str(self.concurrency),
                    "-q",
                    self.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"],
                    "--pid",
                    str(self.workdir / f"{name}.pid"),
                ],
                {"SCALEOUT_WORKER_NAME": name, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())},
            )
        self._start("scheduler", [airflow, "scheduler"])
        self._wait("API server", lambda: self._http("GET", "/api/v2/monitor/health"))
        self._wait("login", self._login)
        self._wait("workers", self._workers_ready, interval=2)
        self._wait("DAGs parsed", self._dags_parsed, interval=2)
        for dag_id in (INGEST, MODELS, TRADE):
            self._http("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        startup = time.monotonic() - t0
        log(
            f"API server {self.api}, {len(self.workers)} Celery workers answering, DAGs parsed and unpaused"
            f" in {startup:.0f} s"
        )

        runs = []
        trade_conf = {"strategy_id": 1, "dry_run": True, "ignore_market_hours": True, "symbols": self.symbols}
        for dag_id, conf in (
            (INGEST, {"symbols": self.symbols}),
            (MODELS, {"symbols": self.symbols}),
            (TRADE, trade_conf),
        ):
            runs.append(self._trigger_and_wait(dag_id, conf))
            if runs[-1]["state"] != "success":
                break
        summary = self.summarize(runs)
        summary["startup_s"] = round(startup, 1)
        if not summary["all_success"]:
            summary["failed_task_logs"] = self._failed_task_logs(self._task_instances([r["run_id"] for r in runs]))
        return summary

    def close(self) -> None:
        log("stopping: scheduler, workers, dag-processor, API server, simulator; dropping the databases ...")
        try:
            self.cleanup.close()
        finally:
            if self.keep:
                log(f"kept {self.workdir}")
            else:
                shutil.rmtree(self.workdir, ignore_errors=True)


def print_summary(summary: dict[str, Any]) -> None:
    print(
        f"\nCeleryExecutor scale-out: {len(summary['workers'])} workers x concurrency "
        f"{summary['concurrency_per_worker']}, symbols {', '.join(summary['symbols'])}; startup "
        f"{summary['startup_s']:.0f} s"
    )
    print(f"{'DAG':24} {'state':8} {'run (s)':>8} {'trigger->done (s)':>18} {'tasks':>6}  per worker")
    for run in summary["runs"]:
        per = ", ".join(f"{w}: {n}" for w, n in run["tasks_per_worker"].items())
        dur = f"{run['duration_s']:.1f}" if run["duration_s"] is not None else "-"
        print(f"{run['dag_id']:24} {run['state']:8} {dur:>8} {run['wall_s']:>18.1f} {run['tasks']:>6}  {per}")
    total = ", ".join(f"{w}: {n}" for w, n in summary["tasks_per_worker"].items())
    print(
        f"tasks per worker: {total}; peak parallel tasks {summary['peak_parallel_tasks']}; "
        f"workers that ran tasks: {summary['workers_used']} of {len(summary['workers'])}"
    )
    if summary.get("failed_task_logs"):
        print(f"\nFailed tasks:\n{summary['failed_task_logs']}")
    print(SUMMARY_PREFIX + json.dumps({k: v for k, v in summary.items() if k != "failed_task_logs"}), flush=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # `kill <pid>` stops as cleanly as Ctrl-C


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", default=",".join(DEFAULT_SYMBOLS), help="comma-separated (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for the whole run (default %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes (default %(default)s)")
    parser.add_argument("--concurrency", type=int, default=2, help="task slots per worker (default %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (AIRFLOW_HOME, logs) for inspection")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    scaleout = Scaleout(symbols, args.timeout, args.keep, args.workers, args.concurrency)
    code = 1
    try:
        summary = scaleout.run()
        print_summary(summary)
        # Scale-out shown: every DAG succeeded and tasks ran on more than one worker (all of them, with two).
        code = 0 if summary["all_success"] and summary["workers_used"] >= min(2, args.workers) else 1
    except KeyboardInterrupt:
        log("interrupted")
        code = 130
    except ScaleoutError as exc:
        log(f"FAILED: {exc}")
        code = EXIT_NO_BROKER if isinstance(exc, NoBrokerError) else 1
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        scaleout.close()
    log(f"{'finished' if code == 0 else 'FAILED'} in {time.monotonic() - started:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
