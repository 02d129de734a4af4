"""Shared benchmark plumbing: a scratch database and a simulator process on a free port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from scripts.devstack import LOCAL, REPO, embedded_postgres, free_port, start_mlflow_server


@dataclass(frozen=True)
class Figure:
    """One goal's figure, as ``make bench`` summarises it at the end."""

    id: str  # P1 ... P8, as in issue #14 and the README's benchmark table
    measure: str
    figure: str
    goal: str
    met: bool


FIGURES: list[Figure] = []


def record(id: str, measure: str, figure: str, goal: str, met: bool) -> None:
    FIGURES.append(Figure(id, measure, figure, goal, met))


def summary() -> str:
    """The recorded figures as a Markdown table (what the README's benchmark table is made from)."""
    rows = ["| id | measure | figure | goal | met |", "|---|---|---|---|---|"]
    rows += [f"| {f.id} | {f.measure} | {f.figure} | {f.goal} | {'yes' if f.met else '**no**'} |"
             for f in sorted(FIGURES, key=lambda f: f.id)]
    return "\n".join(rows)


@contextmanager
def mlflow_server(work: Path) -> Iterator[str]:
    """An ``mlflow server`` on a sqlite store in ``work`` with a file:// artifact root, as make up runs it; yields its
    tracking URI and stops it on exit (its log: work/mlflow.log)."""
    port = free_port()
    proc = start_mlflow_server(port, f"sqlite:///{work / 'mlflow.db'}", work / "mlflow.log",
                               artifact_root=work / "artifacts")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)


@contextmanager
def scratch_database(name: str = "bench") -> Iterator[str]:
    """A fresh database on BENCH_PG_ADMIN_URL's server, else on the embedded PostgreSQL."""
    import psycopg2

    admin_url = os.environ.get("BENCH_PG_ADMIN_URL")
    server = None
    if not admin_url:
        server = embedded_postgres().start()
        admin_url = server.dsn()
    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_url.rpartition('/')[0]}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
        if server is not None and server.started_here:
            server.stop()


@contextmanager
def simulator_process(*args: str) -> Iterator[tuple[str, str]]:
    """Run the simulator in its own process (as a real gateway would be); yields (api, admin) URLs."""
    port = free_port()
    LOCAL.mkdir(exist_ok=True)
    log = open(LOCAL / "bench-simulator.log", "wb")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen([sys.executable, "-m", "sim.ibkr", "--port", str(port), *args],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    admin = f"http://127.0.0.1:{port}/sim/admin"
    try:
        for _ in range(150):
            try:
                httpx.get(f"{admin}/state", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if proc.poll() is not None:
                    raise RuntimeError("simulator exited; see .local/bench-simulator.log") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/v1/api", admin
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()
