"""Run the simulator with uvicorn in a background thread (tests, benchmarks, local stacks)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from include.ibkr.simulator.app import ADMIN_BASE, API_BASE, create_app
from include.ibkr.simulator.config import SimulatorConfig
from include.ibkr.simulator.tls import self_signed_cert


class SimulatorServer:
    """`with SimulatorServer(config) as sim: httpx.get(sim.base_url + "/tickle")`."""

    def __init__(self, config: SimulatorConfig | None = None, port: int = 0, host: str = "127.0.0.1",
                 tls: bool = False) -> None:
        self.config = config or SimulatorConfig()
        self.host, self.port, self.tls = host, port, tls
        self.app = create_app(self.config)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def root_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + API_BASE

    @property
    def admin_url(self) -> str:
        return self.root_url + ADMIN_BASE

    def start(self, timeout: float = 5.0) -> SimulatorServer:
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))  # port 0: the OS picks a free port, known before start
        self.port = sock.getsockname()[1]
        ssl: dict[str, str] = {}
        if self.tls:
            cert, key = self_signed_cert()
            ssl = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
        # No "server: uvicorn" header: clients should only tell us apart by the documented server name.
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off",
                                server_header=False, **ssl)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"ibkr-sim-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("simulator server failed to start")
            time.sleep(0.005)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._server, self._thread = None, None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
