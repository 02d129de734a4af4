"""An ASGI app served by uvicorn on a background thread: the stand-ins for external services (the IBKR gateway
simulator, the OpenAI-compatible LLM stub) in tests, benchmarks and the local stack."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn


class ThreadedServer:
    """``start()`` binds (port 0: the OS picks a free one, known before serving) and waits until uvicorn serves;
    ``stop()`` is idempotent; usable as a context manager. Subclasses set ``app`` and may override ``scheme``
    and ``uvicorn_options()``."""

    name = "server"

    def __init__(self, app: Any, port: int = 0, host: str = "127.0.0.1") -> None:
        self.app, self.host, self.port = app, host, port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def scheme(self) -> str:
        return "http"

    @property
    def root_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def uvicorn_options(self) -> dict[str, Any]:
        return {}

    def start(self, timeout: float = 5.0) -> Self:
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off",
                                **self.uvicorn_options())
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"{self.name}-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} failed to start on {self.host}:{self.port}")
            time.sleep(0.005)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._server, self._thread = None, None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
