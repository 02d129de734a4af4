"""``make up``: Airflow (standalone, UI :8080), MLflow (UI :5500) and the IBKR simulator, in the foreground.

Ctrl-C stops everything this command started, in order, and leaves no process behind:
``airflow standalone`` gets SIGINT (SIGTERM would orphan its scheduler and workers).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from scripts.devstack import LOCAL, REPO, mlflow_store, start_stack

MLFLOW_PORT = int(os.environ.get("MLFLOW_PORT", "5500"))


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def start_mlflow(env: dict[str, str]) -> subprocess.Popen[bytes]:
    # The same store and artifact root make demo's tasks write to directly, so the UI shows those runs.
    backend_uri, artifacts = mlflow_store()
    artifacts.mkdir(parents=True, exist_ok=True)
    log = open(LOCAL / "mlflow.log", "ab")  # noqa: SIM115 - handed to the child process
    return subprocess.Popen(
        [_bin("mlflow"), "server", "--host", "127.0.0.1", "--port", str(MLFLOW_PORT),
         "--backend-store-uri", backend_uri,
         "--default-artifact-root", artifacts.as_uri(), "--workers", "1"],
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


def _stop_group(proc: subprocess.Popen[bytes] | None, sig: int, timeout: float, name: str) -> None:
    """Signal a process that leads its own group, wait, then SIGKILL whatever is left in the group."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop within {timeout:.0f} s; killing it", file=sys.stderr, flush=True)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers (workers, uvicorn children) of that group
    proc.wait()


def _exited(procs: dict[str, subprocess.Popen[bytes]]) -> str | None:
    for name, proc in procs.items():
        if proc.poll() is not None:
            return f"{name} (exit code {proc.returncode})"
    return None


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # `kill <pid>` shuts down as cleanly as Ctrl-C


def main() -> int:
    # Catch Ctrl-C even when started with SIGINT ignored (nohup, a script's background job); children
    # then get the default disposition on exec, so `airflow standalone` can react to our SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    stack = start_stack()
    mlflow = airflow = None
    stop = threading.Event()
    try:
        env = {**os.environ, **stack.env,
               # `airflow standalone` starts its components as `airflow` from PATH.
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
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
        while (exited := _exited({"airflow standalone": airflow, "mlflow server": mlflow})) is None:
            time.sleep(0.5)
        print(f"{exited} exited on its own; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping: Airflow (SIGINT), MLflow, simulator, PostgreSQL ...", flush=True)
        return 0
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop.set()
        _stop_group(airflow, signal.SIGINT, 60, "airflow standalone")  # SIGINT: see module docstring
        _stop_group(mlflow, signal.SIGTERM, 15, "mlflow server")
        stack.stop()
        print("stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
