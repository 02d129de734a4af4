"""A local webhook receiver for the alerts (``AIRFLOW_CONN_ALERTS_WEBHOOK``, as a deployment sets it) and helpers
to put the simulator's session into a given state."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Every JSON body POSTed to the alert webhook, in order."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.delenv("AIRFLOW_CONN_ALERTS_SMTP", raising=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALERTS_WEBHOOK",
        json.dumps({"conn_type": "http", "host": f"http://127.0.0.1:{server.server_port}/hook"}),
    )
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def set_session(sim: Any, **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{sim.admin_url}/session", json=body, timeout=5)
    response.raise_for_status()
    return response.json()


def sim_state(sim: Any) -> dict[str, Any]:
    return httpx.get(f"{sim.admin_url}/state", timeout=5).json()
