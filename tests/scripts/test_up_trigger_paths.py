"""A real ``make up`` (python -m scripts.up) on non-default ports, triggered the two documented ways.

The stack gets its own state directory, six free ports (embedded PostgreSQL, simulator, Airflow, MLflow and the
scheduler's and triggerer's log servers) and ``TRADING_CLOCK`` inside an open session (make up sets the simulator's
clock to it). Then, as the README says: a JWT from ``POST /auth/token`` with the admin password make up generated,
``POST /api/v2/dags/ibkr_trading_strategy/dagRuns`` with ``"logical_date": null``, and ``python -m
scripts.airflow_cli dags trigger`` (make airflow), each with the workflow guide's conf. The fresh stack has no market
data: the first run fetches, models and checks AAPL, GOOGL and MSFT itself (``backfill_symbols``), the second reuses
them. Both must succeed, with features for the three symbols and no request to an order endpoint. Ctrl-C (SIGINT)
must stop everything.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from scripts.devstack import free_ports
from scripts.screenshots import order_endpoint_requests

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "ibkr_trading_strategy"
CONF = {"strategy_id": 1, "symbols": ["AAPL", "GOOGL", "MSFT"], "dry_run": True}  # the workflow guide's, as is
# Friday 2026-12-04 10:30 New York: the market is open (no ignore_market_hours needed) and the session before it,
# the run's data session, has bars in the simulator.
CLOCK = "2026-12-04T15:30:00+00:00"
START_TIMEOUT = 300  # fresh metadata DB + airflow standalone's first start on a busy 2-core machine
RUN_TIMEOUT = 420  # the first run fetches, models and checks three symbols (~1 min when the machine is quiet)
BANNER = re.compile(r"Airflow UI : (?P<url>\S+)\s+login: (?P<user>[^ /]+) / (?P<password>\S+)")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(START_TIMEOUT + RUN_TIMEOUT)]




def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def stack():
    local = Path(tempfile.mkdtemp(prefix="up-", dir="/tmp"))  # short: PostgreSQL's socket path is limited
    dropped = ("MARKET_DB_URL", "IBKR_GATEWAY_URL", "MLFLOW_TRACKING_URI", "MLFLOW_UI_URL", "TEST_PG_ADMIN_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_TESTS_")) and k not in dropped}
    pg, sim, api, mlflow, worker_logs, trigger_logs = free_ports(6)
    env.update({"LOCAL_STACK_DIR": str(local), "EMBEDDED_PG_PORT": str(pg), "SIMULATOR_PORT": str(sim),
                "AIRFLOW_PORT": str(api), "MLFLOW_PORT": str(mlflow),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(worker_logs),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(trigger_logs), "TRADING_CLOCK": CLOCK})  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "scripts.up"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
    output: list[str] = []
    pump = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
    pump.start()
    info = {"env": env, "output": output, "ports": (pg, sim, api, mlflow, worker_logs, trigger_logs)}
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not any(BANNER.search(line) for line in output):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("make up did not print its banner:\n" + "".join(output[-60:]))
            time.sleep(1)
        info["banner"] = next(m for line in output if (m := BANNER.search(line)))
        yield info
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # make up's Ctrl-C path
        try:
            info["exit_code"] = proc.wait(150)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            info["exit_code"] = proc.wait()
        pump.join(10)
        shutil.rmtree(local, ignore_errors=True)
    # SIGINT stopped Airflow, MLflow, the simulator and PostgreSQL cleanly, and freed every port.
    assert info["exit_code"] == 0 and "stopped." in "".join(output[-5:]), "".join(output[-40:])
    assert not [port for port in info["ports"] if _port_open(port)], info["ports"]


def _token(url: str, user: str, password: str) -> str:
    response = httpx.post(f"{url}/auth/token", json={"username": user, "password": password}, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["access_token"]


def _wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(2)
    pytest.fail(f"timed out waiting for {what}; last: {last!r}")


def _finished_run(api: str, headers: dict, run_id: str) -> dict | None:
    """Once the run is over: its state, task states and the XComs of backfill_symbols and read_features."""
    url = f"{api}/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}"
    state = httpx.get(url, headers=headers, timeout=30).json()["state"]
    if state not in ("success", "failed"):
        return None
    tis = httpx.get(f"{url}/taskInstances", headers=headers, timeout=30).json()["task_instances"]
    out = {"run": state, "tasks": {t["task_id"]: t["state"] for t in tis}}
    for task in ("backfill_symbols", "read_features"):
        xcom = httpx.get(f"{url}/taskInstances/{task}/xcomEntries/return_value", params={"deserialize": True},
                         headers=headers, timeout=30)  # fmt: skip
        out[task] = xcom.json()["value"] if xcom.status_code == 200 else None
    return out


def _assert_guide_run_succeeded(result: dict, stack: dict) -> None:
    """Every task green, features for AAPL, GOOGL and MSFT, and no order endpoint called (a dry run)."""
    assert result["run"] == "success" and set(result["tasks"].values()) == {"success"}, result["tasks"]
    features = result["read_features"]
    assert sorted(features["latest"]) == CONF["symbols"] and not features["missing"], features
    assert features["run"]["data_session"] == "2026-12-03" and features["run"]["mode"] == "dry_run", features["run"]
    by_path = httpx.get(f"http://127.0.0.1:{stack['ports'][1]}/sim/admin/stats", timeout=10).json()["by_path"]
    assert by_path.get("/iserver/marketdata/snapshot") and not order_endpoint_requests(by_path), by_path


def test_banner_prints_the_real_ports(stack):
    pg, sim, api, mlflow, worker_logs, trigger_logs = stack["ports"]
    text = "".join(stack["output"])
    assert stack["banner"]["url"] == f"http://127.0.0.1:{api}"
    assert f"MLflow UI  : http://127.0.0.1:{mlflow}" in text
    assert f"scheduler :{worker_logs}, triggerer :{trigger_logs}" in text
    assert f"127.0.0.1:{sim}/v1/api" in text and f"127.0.0.1:{pg}/market" in text
    assert httpx.get(f"http://127.0.0.1:{mlflow}/health", timeout=10).status_code == 200
    assert _port_open(worker_logs) and _port_open(trigger_logs)
    # TRADING_CLOCK went to Airflow and to make up's simulator, whose clock runs from there.
    assert f"trading clock: TRADING_CLOCK={CLOCK} (simulator clock set, running)" in text
    clock = httpx.get(f"http://127.0.0.1:{sim}/sim/admin/state", timeout=10).json()["clock"]
    assert clock["mode"] == "running" and clock["now"][:10] == CLOCK[:10], clock


def test_rest_trigger_with_a_token_runs_the_guide_conf(stack):
    url, user, password = stack["banner"]["url"], stack["banner"]["user"], stack["banner"]["password"]
    # The README's source of the password: the simple auth manager's file in AIRFLOW_HOME.
    passwords = Path(stack["env"]["LOCAL_STACK_DIR"]) / "airflow" / "simple_auth_manager_passwords.json.generated"
    assert json.loads(passwords.read_text())[user] == password
    headers = {"Authorization": f"Bearer {_token(url, user, password)}"}
    api = f"{url}/api/v2"
    dag = _wait_for(lambda: (r := httpx.get(f"{api}/dags/{DAG_ID}", headers=headers, timeout=30)).status_code == 200
                    and r.json(), 120, f"{DAG_ID} to be parsed")  # fmt: skip
    assert dag["is_paused"] is False  # manual only: unpaused at creation
    scheduled = httpx.get(f"{api}/dags", params={"dag_id_pattern": "strategy_"}, headers=headers, timeout=30).json()
    assert scheduled["dags"] and all(d["is_paused"] for d in scheduled["dags"])  # scheduled DAGs still start paused
    # Airflow 3 has no /api/v1: only the UI's catch-all route answers there (405 to a POST).
    v1 = httpx.post(f"{url}/api/v1/dags/{DAG_ID}/dagRuns", headers=headers, json={"conf": CONF}, timeout=30)
    assert v1.status_code in (404, 405), v1.text

    response = httpx.post(f"{api}/dags/{DAG_ID}/dagRuns", headers=headers, timeout=30,
                          json={"logical_date": None, "conf": CONF})  # fmt: skip
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["state"] == "queued" and run["logical_date"] is None and run["conf"] == CONF
    result = _wait_for(lambda: _finished_run(api, headers, run["dag_run_id"]), RUN_TIMEOUT, "the REST run")
    _assert_guide_run_succeeded(result, stack)
    # A fresh stack: the run itself fetched, modeled and checked the three symbols.
    assert sorted(result["backfill_symbols"]["loaded"]) == CONF["symbols"], result["backfill_symbols"]
    # By now the dag-processor has read every DAG file: none failed, the Cosmos ones included (make up parses dbt's
    # manifest before Airflow starts; a fresh clone has none).
    errors = httpx.get(f"{api}/importErrors", headers=headers, timeout=30).json()
    assert errors["total_entries"] == 0, [(e["filename"], e["stack_trace"].strip().splitlines()[-1])
                                          for e in errors["import_errors"]]
    dags = httpx.get(f"{api}/dags", headers=headers, params={"limit": 100}, timeout=30).json()["dags"]
    assert {"ibkr_portfolio_monitor", "market_data_models"} <= {d["dag_id"] for d in dags}


def test_cli_trigger_runs_the_guide_conf(stack):
    env = {**stack["env"], "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "scripts.airflow_cli", "dags", "trigger", DAG_ID, "--conf",
                          json.dumps(CONF), "-o", "json"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=180)  # fmt: skip
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    # stdout also carries Airflow's warnings (graphviz missing): the JSON is the line that starts with [{
    run_id = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("[{")))[0]["dag_run_id"]
    url = stack["banner"]["url"]
    headers = {"Authorization": f"Bearer {_token(url, stack['banner']['user'], stack['banner']['password'])}"}
    result = _wait_for(lambda: _finished_run(f"{url}/api/v2", headers, run_id), RUN_TIMEOUT, "the CLI run")
    _assert_guide_run_succeeded(result, stack)
    assert result["backfill_symbols"]["needed"] == {}, result["backfill_symbols"]  # the REST run's data, reused
