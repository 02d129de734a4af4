"""``make up``: Airflow (standalone, UI :8080), MLflow (UI :5500) and the IBKR simulator, in the foreground.

Every port follows its variable (``AIRFLOW_PORT``, ``MLFLOW_PORT``, ``SIMULATOR_PORT``, ``EMBEDDED_PG_PORT``, the
scheduler's and triggerer's log-server ports; see ``devstack.StackPorts``) and the banner prints the real URLs.
``TRADING_CLOCK`` (an ISO instant) fixes "now" for the Airflow processes and, when make up runs its own simulator,
sets the simulator's clock to it (running from there): the guide's dry run outside market hours.
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
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx

from scripts.devstack import (
    LOCAL,
    REPO,
    StackPorts,
    free_port,
    manifest_command,
    mlflow_store,
    port_open,
    start_mlflow_server,
    start_stack,
)

PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"  # written by the simple auth manager in AIRFLOW_HOME


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def resolve_ports(ports: StackPorts, explicit: set[str], in_use: Callable[[int], bool] = port_open,
                  pick: Callable[[], int] = free_port) -> tuple[StackPorts, list[str]]:
    """Refuse busy UI ports; move the log-server ports off busy defaults (a second stack, another program).

    Returns the ports to use and one note per port moved. A port set by its variable is never moved.
    """
    for field in ("airflow", "mlflow"):
        port = getattr(ports, field)
        if in_use(port):
            var = StackPorts.ENV[field]
            raise RuntimeError(f"port {port} is in use (a running make up?): stop it, or set {var}")
    moved, notes = {}, []
    for field in ("worker_log_server", "trigger_log_server"):
        port = getattr(ports, field)
        if field not in explicit and in_use(port):
            moved[field] = pick()
            notes.append(f"port {port} is busy: {StackPorts.ENV[field]}={moved[field]}")
    return replace(ports, **moved), notes


def banner(ports: StackPorts, login: str) -> str:
    """What make up prints once Airflow answers: every URL on its real port."""
    lines = [
        f" Airflow UI : {ports.airflow_url}   login: {login}",
        f" REST API   : {ports.airflow_url}/api/v2   (token: POST {ports.airflow_url}/auth/token, see README)",
        f" MLflow UI  : {ports.mlflow_url}",
        f" log servers: scheduler :{ports.worker_log_server}, triggerer :{ports.trigger_log_server}",
        " CLI        : make airflow ARGS=\"dags list\"   (this stack's settings)",
        " Ctrl-C stops everything.",
    ]
    return "\n".join(["=" * 72, *lines, "=" * 72])


def trading_clock(environ: dict[str, str] | None = None) -> str | None:
    """TRADING_CLOCK checked (ISO 8601 with a zone; SettingsError, a ValueError, says what is wrong), in UTC."""
    from include.settings import Settings

    raw = (os.environ if environ is None else environ).get("TRADING_CLOCK") or ""
    at = Settings.from_env({"TRADING_CLOCK": raw}).trading_clock if raw.strip() else None
    return at.isoformat() if at else None


def pin_simulator_clock(gateway_url: str, at: str) -> None:
    """The simulator's clock at ``at``, running from there: its bars, quotes and sessions as of that instant."""
    admin = gateway_url.split("/v1/api")[0] + "/sim/admin/clock"
    httpx.post(admin, json={"now": at, "running": True}, timeout=10).raise_for_status()


def start_mlflow(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    # The same store and artifact root make demo's tasks write to directly, so the UI shows those runs.
    backend_uri, artifacts = mlflow_store()
    artifacts.mkdir(parents=True, exist_ok=True)
    return start_mlflow_server(port, backend_uri, LOCAL / "mlflow.log", artifact_root=artifacts, env=env)


def _print_login_when_ready(home: str, ports: StackPorts, stop: threading.Event) -> None:
    url = ports.airflow_url
    while not stop.wait(2):
        try:
            if httpx.get(f"{url}/api/v2/monitor/health", timeout=2).status_code != 200:
                continue
        except httpx.HTTPError:
            continue
        pw_file = Path(home) / PASSWORDS_FILE
        login = json.loads(pw_file.read_text()) if pw_file.exists() else {}
        creds = ", ".join(f"{user} / {pw}" for user, pw in login.items()) or f"see {pw_file}"
        print(f"\n{banner(ports, creds)}\n", flush=True)
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
    try:
        configured = StackPorts.from_env()
        ports, notes = resolve_ports(configured, configured.explicit())
        clock = trading_clock()
        stack = start_stack(ports)
    except (RuntimeError, ValueError) as exc:  # a busy or malformed port, a bad TRADING_CLOCK: say which variable
        print(f"make up: {exc}", file=sys.stderr)
        return 2
    for note in notes:
        print(note, flush=True)
    mlflow = airflow = None
    stop = threading.Event()
    try:
        env = {**os.environ, **stack.env,
               # `airflow standalone` starts its components as `airflow` from PATH.
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               "MLFLOW_TRACKING_URI": ports.mlflow_url,
               "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "http", "host": ports.mlflow_url})}
        print("\n".join(stack.describe()), flush=True)
        if clock:  # the Airflow processes get it with the environment; our own simulator follows it
            if stack.simulator:
                pin_simulator_clock(stack.gateway_url, clock)
            where = "simulator clock set, running" if stack.simulator else "the external gateway keeps its own time"
            print(f"trading clock: TRADING_CLOCK={clock} ({where})", flush=True)
            env["TRADING_CLOCK"] = clock
        # The Cosmos DAGs render from dbt's manifest: a fresh clone has none, an edited dbt project an old one.
        steps = [("airflow db migrate", [_bin("airflow"), "db", "migrate"], subprocess.DEVNULL),
                 ("the Airflow pools, variables and connections", [sys.executable, "-m", "scripts.airflow_objects"],
                  None),
                 ("dbt parse (the manifest the dbt DAGs render from)", manifest_command(force=True), None)]
        for what, command, stdout in steps:
            try:
                subprocess.run(command, env=env, cwd=REPO, check=True, stdout=stdout)
            except subprocess.CalledProcessError as exc:  # its own error is above; no traceback of ours
                print(f"make up: {what} failed (exit status {exc.returncode}, its output is above); Airflow was not "
                      "started", file=sys.stderr)
                return 1
        mlflow = start_mlflow(env, ports.mlflow)
        # Its own process group, so the terminal's Ctrl-C reaches it only through us, exactly once.
        airflow = subprocess.Popen([_bin("airflow"), "standalone"], env=env, cwd=REPO, start_new_session=True)
        threading.Thread(target=_print_login_when_ready,
                         args=(env["AIRFLOW_HOME"], ports, stop), daemon=True).start()
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
