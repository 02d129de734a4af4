"""Run the simulator with uvicorn in a background thread (tests, benchmarks, local stacks)."""

from __future__ import annotations

from typing import Any

from sim.ibkr.app import ADMIN_BASE, API_BASE, create_app
from sim.ibkr.config import SimulatorConfig
from sim.ibkr.tls import self_signed_cert
from sim.threaded_server import ThreadedServer


class SimulatorServer(ThreadedServer):
    """`with SimulatorServer(config) as sim: httpx.get(sim.base_url + "/tickle")`."""

    name = "ibkr-sim"

    def __init__(self, config: SimulatorConfig | None = None, port: int = 0, host: str = "127.0.0.1",
                 tls: bool = False) -> None:
        self.config = config or SimulatorConfig()
        self.tls = tls
        super().__init__(create_app(self.config), port, host)

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def base_url(self) -> str:
        return self.root_url + API_BASE

    @property
    def admin_url(self) -> str:
        return self.root_url + ADMIN_BASE

    def uvicorn_options(self) -> dict[str, Any]:
        # No "server: uvicorn" header: clients should only tell us apart by the documented server name.
        options: dict[str, Any] = {"server_header": False}
        if self.tls:
            cert, key = self_signed_cert()
            options.update(ssl_certfile=str(cert), ssl_keyfile=str(key))
        return options

