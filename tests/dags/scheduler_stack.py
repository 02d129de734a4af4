"""A real Airflow stack for tests: API server, dag-processor and scheduler (LocalExecutor) on throw-away
PostgreSQL databases, driven through the REST API; every process is started here and stopped here, by PID."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from scripts.devstack import free_ports, manifest_command

REPO = Path(__file__).resolve().parents[2]


class SchedulerStack:
    def __init__(self, workdir: Path, metadata_url: str, env: dict[str, str],
                 dags_folder: Path = REPO / "dags", triggerer: bool = False) -> None:
        port, log_port = free_ports(2)
        self.api = f"http://127.0.0.1:{port}"
        self.workdir = workdir
        self.logs = workdir / "logs-processes"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.triggerer = triggerer  # deferred tasks (e.g. Cosmos's watcher sensors) need one
        self.token = ""
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
            **env,
            "AIRFLOW_HOME": str(workdir / "airflow"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url.replace("postgresql://", "postgresql+psycopg2://", 1),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.1",  # as make up (scripts/devstack.py)
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",  # as make up
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": self.api,
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_port),
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only the runs a test triggers
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
            "PYTHONPATH": str(REPO),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "NO_PROXY": "127.0.0.1,localhost",
        }

    # --- processes ------------------------------------------------------------------------------------------
    def _call(self, name: str, argv: list[str]) -> None:
        with open(self.logs / f"{name}.log", "ab") as out:
            code = subprocess.call(argv, env=self.env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, timeout=300)
        if code:
            raise RuntimeError(f"{name} failed ({code}): {(self.logs / f'{name}.log').read_text()[-3000:]}")

    def start(self, timeout: float = 300) -> SchedulerStack:
        airflow = str(Path(sys.executable).with_name("airflow"))
        self._call("db-migrate", [airflow, "db", "migrate"])
        self._call("airflow-objects", [sys.executable, "-m", "scripts.airflow_objects"])
        # The Cosmos DAG files need dbt's manifest; on a fresh checkout this stack may start before anything made one.
        self._call("dbt-manifest", manifest_command())
        for name, argv in (("api-server", [airflow, "api-server", "--host", "127.0.0.1", "--port",
                                           self.env["AIRFLOW__API__PORT"], "--workers", "1"]),
                           ("dag-processor", [airflow, "dag-processor"]), ("scheduler", [airflow, "scheduler"]),
                           *([("triggerer", [airflow, "triggerer"])] if self.triggerer else [])):
            out = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
            self.procs[name] = subprocess.Popen(argv, env=self.env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                                start_new_session=True)
            out.close()
        self.wait("API server", lambda: self.http("GET", "/api/v2/monitor/health"), timeout)
        self.wait("login", self._login, 60)
        return self

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 60
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # task processes of that group, if any are left
            proc.wait()

    def wait(self, what: str, check: Any, timeout: float, interval: float = 1.0) -> Any:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited: {(self.logs / f'{name}.log').read_text()[-3000:]}")
            try:
                if result := check():
                    return result
            except Exception as exc:  # not up yet
                last = exc
            time.sleep(interval)
        raise TimeoutError(f"{what} not ready within {timeout:.0f} s (last error: {last})")

    # --- REST API ------------------------------------------------------------------------------------------
    def http(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        resp = httpx.request(method, f"{self.api}{path}", headers=headers, timeout=30, **kwargs)
        resp.raise_for_status()
        return resp.json() if resp.content else None

    def _login(self) -> bool:
        password = json.loads((Path(self.env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated")
                              .read_text())["admin"]
        self.token = self.http("POST", "/auth/token", json={"username": "admin", "password": password})["access_token"]
        return True

    def dag_ready(self, dag_id: str, timeout: float = 240) -> None:
        def parsed() -> bool:
            errors = self.http("GET", "/api/v2/importErrors")
            if errors.get("total_entries"):
                self.import_errors = errors["import_errors"]
                return True
            return bool(self.http("GET", f"/api/v2/dags/{dag_id}"))

        self.import_errors: list[Any] = []
        self.wait(f"DAG {dag_id}", parsed, timeout, interval=2)
        if self.import_errors:
            raise AssertionError(f"DAG import errors: {self.import_errors}")
        self.http("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any], run_id: str) -> str:
        self.http("POST", f"/api/v2/dags/{dag_id}/dagRuns",
                  json={"dag_run_id": run_id, "logical_date": None, "conf": conf})
        return run_id

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.http("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        return self.wait(f"{dag_id} {run_id}",
                         lambda: (s := self.run_state(dag_id, run_id)) in ("success", "failed") and s, timeout, 2)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        tis = self.http("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {t["task_id"]: t["state"] for t in tis}

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        return self.task_states(dag_id, run_id).get(task_id)

    def clear(self, dag_id: str, run_id: str, task_ids: list[str]) -> None:
        self.http("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances",
                  json={"dry_run": False, "dag_run_id": run_id, "task_ids": task_ids, "only_failed": False,
                        "reset_dag_runs": True})

    def set_pool(self, name: str, slots: int) -> None:
        pool = self.http("GET", f"/api/v2/pools/{name}")  # PATCH wants the whole pool, not only the slots
        self.http("PATCH", f"/api/v2/pools/{name}", json={"name": name, "slots": slots,
                                                           "description": pool.get("description"),
                                                           "include_deferred": pool.get("include_deferred", False)})
