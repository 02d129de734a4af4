"""The simulator over real HTTP: background-thread server, TLS, and the command line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx

from sim.ibkr.config import SimulatorConfig
from sim.ibkr.server import SimulatorServer
from tests.sim.sim_support import AAPL, IN_SESSION


def test_background_server_with_httpx() -> None:
    started = time.perf_counter()
    with SimulatorServer(SimulatorConfig(now=IN_SESSION, rate_limits=False)) as sim:
        assert time.perf_counter() - started < 1.0
        assert sim.base_url == f"http://127.0.0.1:{sim.port}/v1/api"
        assert sim.admin_url == f"http://127.0.0.1:{sim.port}/sim/admin"
        with httpx.Client(base_url=sim.base_url, timeout=10) as client:
            tickle = client.post("/tickle")
            assert tickle.status_code == 200 and "server" not in tickle.headers
            assert client.get("/iserver/accounts").json()["isPaper"] is True
            history = client.get(
                "/iserver/marketdata/history", params={"conid": AAPL, "period": "1y", "bar": "1d"}
            )
            assert history.status_code == 200 and len(history.json()["data"]) > 200
        assert httpx.get(sim.admin_url + "/stats").json()["requests"] == 3
    with socket.socket() as probe:  # stopped: the port is free again
        probe.bind(("127.0.0.1", sim.port))


def test_tls_server() -> None:
    with SimulatorServer(SimulatorConfig(now=IN_SESSION), tls=True) as sim:
        assert sim.base_url.startswith("https://")
        r = httpx.post(sim.base_url + "/iserver/auth/status", verify=False)
        assert r.json()["authenticated"] is True


def test_command_line_serves_and_stops_on_sigterm() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sim.ibkr",
            "--port",
            str(port),
            "--no-rate-limits",
            "--state",
            "sso_only",
            "--synthetic-symbols",
            "2",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": "."},
    )
    try:
        line = proc.stderr.readline() if proc.stderr else ""
        assert f"http://127.0.0.1:{port}/v1/api" in line
        deadline = time.monotonic() + 10
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/v1/api/iserver/accounts")
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert r.json() == {"error": "Bad Request: no bridge", "statusCode": 400}
        assert "SYN0002" in httpx.get(f"http://127.0.0.1:{port}/v1/api/trsrv/stocks?symbols=SYN0002").json()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) in (
            0,
            -signal.SIGTERM,
        )  # uvicorn re-raises the signal after a clean shutdown
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
