"""``make up``: Airflow (standalone, UI :8080), MLflow (UI :5500) and the IBKR simulator, in the foreground.

Ctrl-C stops everything this command started, in order, and leaves no process behind:
``airflow standalone`` gets SIGINT (SIGTERM would orphan its scheduler and workers).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from scripts.devstack import LOCAL, REPO, start_stack

MLFLOW_PORT = int(os.environ.get("MLFLOW_PORT", "5500"))


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def start_mlflow(env: dict[str, str]) -> subprocess.Popen[bytes]:
    store = LOCAL / "mlflow"
    (store / "artifacts").mkdir(parents=True, exist_ok=True)
    log = open(LOCAL / "mlflow.log", "ab")  # noqa: SIM115 - handed to the child process
    return subprocess.Popen(
        [_bin("mlflow"), "server", "--host", "127.0.0.1", "--port", str(MLFLOW_PORT),
         "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}",
         "--default-artifact-root", (store / "artifacts").as_uri(), "--workers", "1"],
        env={**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def _print_login_when_ready(home: str, api_port: str, stop: threading.Event) -> None:
    url = f"http://127.0.0.1:{api_port}"
    while not stop.wait(2):
        try:
            if httpx.get(f"{url}/api/v2/monitor/health", timeout=2).status_code != 200:
                continue
        except httpx.HTTPError:
            continue
        pw_file = Path(home) / "simple_auth_manager_passwords.json.generated"
        login = json.loads(pw_file.read_text()) if pw_file.exists() else {}
        creds = ", ".join(f"{user} / {pw}" for user, pw in login.items()) or f"see {pw_file}"
        print(f"\n{'=' * 72}\n Airflow UI : {url}   login: {creds}\n"
              f" MLflow UI  : http://127.0.0.1:{MLFLOW_PORT}\n Ctrl-C stops everything.\n{'=' * 72}\n",
              flush=True)
        return


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # `kill <pid>` shuts down as cleanly as Ctrl-C


def main() -> int:
    stack = start_stack()
    mlflow = airflow = None
    stop = threading.Event()
    try:
        env = {**os.environ, **stack.env,
               "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{MLFLOW_PORT}",
               "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "http",
                                                          "host": f"http://127.0.0.1:{MLFLOW_PORT}"})}
        print("\n".join(stack.describe()), flush=True)
        subprocess.run([_bin("airflow"), "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([sys.executable, "-m", "scripts.airflow_objects"], env=env, cwd=REPO, check=True)
        mlflow = start_mlflow(env)
        # Its own process group, so the terminal's Ctrl-C reaches it only through us, exactly once.
        airflow = subprocess.Popen([_bin("airflow"), "standalone"], env=env, cwd=REPO, start_new_session=True)
        threading.Thread(target=_print_login_when_ready,
                         args=(env["AIRFLOW_HOME"], env["AIRFLOW__API__PORT"], stop), daemon=True).start()
        signal.signal(signal.SIGTERM, _interrupt)
        while airflow.poll() is None and mlflow.poll() is None:
            time.sleep(0.5)
        print("a component exited on its own; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping: Airflow (SIGINT), MLflow, simulator, PostgreSQL ...", flush=True)
        return 0
    finally:
        stop.set()
        if airflow is not None and airflow.poll() is None:
            airflow.send_signal(signal.SIGINT)
            try:
                airflow.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(airflow.pid, signal.SIGKILL)
        if mlflow is not None and mlflow.poll() is None:
            os.killpg(mlflow.pid, signal.SIGTERM)  # gunicorn/uvicorn workers share the group
            try:
                mlflow.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(mlflow.pid, signal.SIGKILL)
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
