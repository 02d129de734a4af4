"""The offline local stack behind ``make demo``/``make up``/``make test``.

Embedded PostgreSQL (pgserver's binaries, listening on 127.0.0.1 TCP), the IBKR gateway simulator
as a subprocess, and the environment that points Airflow at them. Anything already configured
(``MARKET_DB_URL``, ``IBKR_GATEWAY_URL``) is used as is and never replaced by a local stand-in.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import httpx

REPO = Path(__file__).resolve().parents[1]
LOCAL = Path(os.environ.get("LOCAL_STACK_DIR", REPO / ".local"))
MARKET_DB = "market"
AIRFLOW_DB = "airflow"
_PG_SYSTEM_USER = "pgserver"  # initdb refuses to run as root; pgserver runs postgres as this user
# pgserver asks platformdirs for a runtime dir at import; without XDG_RUNTIME_DIR that only warns.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")


@dataclass(frozen=True)
class StackPorts:
    """Every port of the local stack, from the variables the README documents (defaults in brackets)."""

    embedded_pg: int = 54320  # EMBEDDED_PG_PORT
    simulator: int = 5055  # SIMULATOR_PORT
    airflow: int = 8080  # AIRFLOW_PORT: API server and UI
    mlflow: int = 5500  # MLFLOW_PORT: make up's MLflow UI
    worker_log_server: int = 8793  # AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT: the scheduler serves task logs here
    trigger_log_server: int = 8794  # AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT: the triggerer's logs

    ENV: ClassVar[dict[str, str]] = {
        "embedded_pg": "EMBEDDED_PG_PORT", "simulator": "SIMULATOR_PORT", "airflow": "AIRFLOW_PORT",
        "mlflow": "MLFLOW_PORT", "worker_log_server": "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
        "trigger_log_server": "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
    }  # fmt: skip

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StackPorts:
        environ = os.environ if environ is None else environ
        values = {}
        for field, var in cls.ENV.items():
            raw = (environ.get(var) or "").strip()
            if raw:
                if not raw.isdigit() or not 0 < int(raw) < 65536:
                    raise ValueError(f"{var}={raw!r} is not a TCP port")
                values[field] = int(raw)
        return cls(**values)

    def explicit(self, environ: Mapping[str, str] | None = None) -> set[str]:
        """The fields set by a variable (the others are defaults, which make up may move off a busy port)."""
        environ = os.environ if environ is None else environ
        return {field for field, var in self.ENV.items() if (environ.get(var) or "").strip()}

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.airflow}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.mlflow}"

    @property
    def simulator_url(self) -> str:
        return f"http://127.0.0.1:{self.simulator}/v1/api"


_PORTS = StackPorts.from_env()
PG_PORT = _PORTS.embedded_pg
SIM_PORT = _PORTS.simulator


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports on 127.0.0.1 free right now (all bound at once, so none repeats)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]


def manifest_command(force: bool = False) -> list[str]:
    """A child process bringing dbt's manifest up to date (``include.dbt_project.ensure_manifest``; ``force``: parse
    even when there is one, e.g. after the dbt project changed). The Cosmos DAG files need it before any Airflow
    process parses them; dbt stays out of the calling process."""
    call = "ensure_manifest(force=True)" if force else "ensure_manifest()"
    # dbt has printed the error by then: its first line, not a traceback of ours, ends the output
    return [sys.executable, "-c", "import sys\nfrom include.dbt_project import ensure_manifest\n"
            f"try:\n    {call}\nexcept RuntimeError as exc:\n    sys.exit(str(exc).splitlines()[0])"]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL 16 cluster from the ``pgserver`` wheel, reachable over TCP (Cosmos and GX need TCP)."""

    pgdata: Path
    port: int = PG_PORT
    started_here: bool = False

    @property
    def _user(self) -> str | None:
        return _PG_SYSTEM_USER if os.geteuid() == 0 else None

    def dsn(self, database: str = "postgres") -> str:
        # A dummy password: Cosmos's profile mapping insists on one even with trust auth.
        return f"postgresql://postgres:postgres@127.0.0.1:{self.port}/{database}"

    def _initdb(self) -> None:
        from pgserver import initdb

        self.pgdata.mkdir(parents=True, exist_ok=True)
        if self._user:
            from pgserver._commands import POSTGRES_BIN_PATH
            from pgserver.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

            ensure_user_exists(self._user)
            ensure_prefix_permissions(self.pgdata)
            ensure_prefix_permissions(POSTGRES_BIN_PATH)
            ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
            shutil.chown(self.pgdata, self._user, self._user)
        initdb(["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=self.pgdata, user=self._user)

    def start(self) -> EmbeddedPostgres:
        if port_open(self.port):
            if not (self.pgdata / "postmaster.pid").exists():
                raise RuntimeError(f"port {self.port} is taken by another program; set EMBEDDED_PG_PORT")
            return self  # already running from an earlier command
        from pgserver import pg_ctl

        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        log = self.pgdata / "server.log"
        opts = f"-h 127.0.0.1 -p {self.port} -k {self.pgdata}"
        pg_ctl(["-w", "-o", opts, "-l", str(log), "start"], pgdata=self.pgdata, user=self._user, timeout=60)
        self.started_here = True
        return self

    def stop(self) -> None:
        from pgserver import pg_ctl

        if (self.pgdata / "postmaster.pid").exists():
            pg_ctl(["-m", "fast", "-w", "stop"], pgdata=self.pgdata, user=self._user, timeout=60)

    def ensure_database(self, name: str) -> str:
        import psycopg2

        conn = psycopg2.connect(self.dsn())
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.dsn(name)


def embedded_postgres() -> EmbeddedPostgres:
    return EmbeddedPostgres(LOCAL / "pgdata", port=StackPorts.from_env().embedded_pg)


def start_simulator(port: int = SIM_PORT, *extra_args: str) -> subprocess.Popen[bytes]:
    """Start ``python -m sim.ibkr`` and wait until it answers."""
    if port_open(port):
        raise RuntimeError(f"port {port} is already in use; stop that program or set SIMULATOR_PORT")
    log = open(LOCAL / "simulator.log", "ab")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.ibkr", "--host", "127.0.0.1", "--port", str(port),
         *extra_args],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"simulator exited with {proc.returncode}; see {LOCAL / 'simulator.log'}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/sim/admin/state", timeout=1).raise_for_status()
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("simulator did not start within 30 s")


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_mlflow_server(port: int, backend_uri: str, log: Path, *, artifact_root: Path | None = None,
                        artifacts_destination: Path | None = None,
                        env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``mlflow server`` on 127.0.0.1:``port`` (one worker, no job runner), as make up runs it, in a process group of
    its own (stopped as one, by its id), appending to ``log``; the caller waits for it. ``artifact_root``: artifacts
    written by the clients straight to that directory (the tasks' store); ``artifacts_destination``: proxied through
    the server."""
    args = [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--backend-store-uri", backend_uri]
    if artifact_root is not None:
        args += ["--default-artifact-root", artifact_root.as_uri()]
    if artifacts_destination is not None:
        args += ["--artifacts-destination", artifacts_destination.as_uri()]
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(args, env={**(os.environ if env is None else env),
                                           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def mlflow_store() -> tuple[str, Path]:
    """The local MLflow store: sqlite backend + artifact root beside it, shared by tasks and `make up`'s UI."""
    store = (LOCAL / "mlflow").resolve()
    return f"sqlite:///{store / 'mlflow.db'}", store / "artifacts"


def _jwt_secret() -> str:
    path = LOCAL / "airflow" / "jwt_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))  # 64 characters, as the API server requires
    return path.read_text().strip()


def gateway_connection_json(gateway_url: str) -> str:
    """The gateway URL as an Airflow HTTP connection (scheme in ``schema``, API path in extra)."""
    parts = urlsplit(gateway_url)
    return json.dumps({
        "conn_type": "http", "host": parts.hostname, "port": parts.port, "schema": parts.scheme,
        "extra": {"base_path": parts.path or "/v1/api", "verify_ssl": False},
    })


def airflow_env(market_db_url: str, gateway_url: str, metadata_url: str | None,
                ports: StackPorts | None = None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for every Airflow process of the local stack (demo, standalone, the CLI, tests).

    ``environ`` (default: this process's) may override the MLflow store and UI and the metadata DB.
    """
    environ = os.environ if environ is None else environ
    ports = ports or StackPorts.from_env(environ)
    home = LOCAL / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        # The scheduler loop polls every 0.1 s when idle (default 1 s): each dependent task (a dbt model after its
        # parent, a trading step after the one before) starts sooner (python -m bench cosmos_scheduler, trading);
        # the cost: the idle scheduler uses ~11% of a core instead of ~8% at 0.2 s (docs/deployment.md).
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.1",
        # A task's supervisor can miss its process's exit and notice it only at its next heartbeat tick (when the
        # process closed its sockets a moment before it exited): the executor slot stayed taken 5 s after a quarter
        # of the trading run's tasks, and a task queued behind four such slots waited. 1 s bounds that; the cost is
        # one heartbeat a second per running task (docs/deployment.md).
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(ports.airflow),
        # Task supervisors call the API server here; left unset they call :8080 whatever the API port is, and every
        # task dies with only "Pre Execute" in its log.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{ports.airflow_url}/execution/",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports.worker_log_server),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(ports.trigger_log_server),
        "AIRFLOW__API_AUTH__JWT_SECRET": _jwt_secret(),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW_CONN_MARKET_DB": market_db_url,
        "AIRFLOW_CONN_IBKR_DEFAULT": gateway_connection_json(gateway_url),
        "MARKET_DB_URL": market_db_url,
        "IBKR_GATEWAY_URL": gateway_url,
        # An absolute sqlite path: each task has its own cwd. include.tracking puts artifacts beside it.
        "MLFLOW_TRACKING_URI": environ.get("MLFLOW_TRACKING_URI") or mlflow_store()[0],
        # The "MLflow run" links and make demo's summary point at make up's MLflow UI, on its port.
        "MLFLOW_UI_URL": environ.get("MLFLOW_UI_URL") or ports.mlflow_url,
        "PYTHONPATH": str(REPO),
        "GX_ANALYTICS_ENABLED": "false",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = (
        environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
        or (metadata_url.replace("postgresql://", "postgresql+psycopg2://") if metadata_url else None)
        or f"sqlite:///{home / 'airflow.db'}"
    )
    return env


def stack_urls(ports: StackPorts | None = None, environ: Mapping[str, str] | None = None,
               embedded: EmbeddedPostgres | None = None) -> tuple[str, str, str | None]:
    """(market DB URL, gateway URL, metadata DB URL or None for SQLite) of the local stack, starting nothing.

    A configured ``MARKET_DB_URL`` / ``IBKR_GATEWAY_URL`` wins; otherwise the embedded PostgreSQL (which also
    holds the metadata DB) and the simulator on their ports.
    """
    ports = ports or StackPorts.from_env(environ)
    environ = os.environ if environ is None else environ
    market_db_url = environ.get("MARKET_DB_URL") or None
    metadata_url = None
    if not market_db_url:
        embedded = embedded or EmbeddedPostgres(LOCAL / "pgdata", port=ports.embedded_pg)
        market_db_url, metadata_url = embedded.dsn(MARKET_DB), embedded.dsn(AIRFLOW_DB)
    return market_db_url, environ.get("IBKR_GATEWAY_URL") or ports.simulator_url, metadata_url


@dataclass
class LocalStack:
    """What ``start_stack`` started, so the caller stops exactly that and nothing else."""

    market_db_url: str
    gateway_url: str
    env: dict[str, str]
    postgres: EmbeddedPostgres | None = None
    simulator: subprocess.Popen[bytes] | None = None

    def describe(self) -> list[str]:
        from include.settings import mask_url

        pg = f"embedded PostgreSQL {self.postgres.pgdata}" if self.postgres else "external server"
        gw = f"simulator (pid {self.simulator.pid})" if self.simulator else "external gateway"
        return [
            f"market data : {mask_url(self.market_db_url)}  [{pg}]",
            f"IBKR gateway: {self.gateway_url}  [{gw}]",
            f"Airflow home: {self.env['AIRFLOW_HOME']}",
            f"MLflow store: {mask_url(self.env['MLFLOW_TRACKING_URI'])}",
        ]

    def stop(self) -> None:
        stop_process(self.simulator)
        if self.postgres is not None and self.postgres.started_here:
            self.postgres.stop()


def start_stack(ports: StackPorts | None = None) -> LocalStack:
    """Start what is not configured (embedded PostgreSQL, simulator) and build the Airflow environment."""
    ports = ports or StackPorts.from_env()
    LOCAL.mkdir(parents=True, exist_ok=True)
    market_db_url, gateway_url, metadata_url = stack_urls(ports)
    postgres = simulator = None
    try:
        if not os.environ.get("MARKET_DB_URL"):
            postgres = EmbeddedPostgres(LOCAL / "pgdata", port=ports.embedded_pg).start()
            market_db_url = postgres.ensure_database(MARKET_DB)
            metadata_url = postgres.ensure_database(AIRFLOW_DB)
        if not os.environ.get("IBKR_GATEWAY_URL"):
            simulator = start_simulator(ports.simulator)
    except BaseException:
        stop_process(simulator)
        if postgres is not None and postgres.started_here:
            postgres.stop()
        raise
    env = airflow_env(market_db_url, gateway_url, metadata_url, ports)
    return LocalStack(market_db_url, gateway_url, env, postgres, simulator)
