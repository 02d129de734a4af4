"""A local SMTP server (aiosmtpd) and a local HTTP receiver for the alert channels, and the connections that point
the alerts at them (``AIRFLOW_CONN_ALERTS_SMTP`` / ``AIRFLOW_CONN_ALERTS_WEBHOOK``, as a deployment would set)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from scripts.devstack import free_port

SMTP_USER, SMTP_PASSWORD = "alerts", "s3cret-pw"


@pytest.fixture(autouse=True)
def no_alert_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's shell must not leak real alert channels (or a market DB) into the tests."""
    for var in ("AIRFLOW_CONN_ALERTS_SMTP", "AIRFLOW_CONN_ALERTS_WEBHOOK", "MARKET_DB_URL", "AIRFLOW_CONN_MARKET_DB"):
        monkeypatch.delenv(var, raising=False)


@dataclass
class SmtpSink:
    """What the SMTP server received: one dict per message (mail_from, rcpt_tos, message, login)."""

    host: str
    port: int
    messages: list[dict[str, Any]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    def connection(self, **extra: Any) -> str:
        body = {
            "conn_type": "smtp",
            "host": self.host,
            "port": self.port,
            "login": SMTP_USER,
            "password": SMTP_PASSWORD,
            "extra": {"from": "airflow@example.test", "to": ["ops@example.test", "desk@example.test"]} | extra,
        }
        return json.dumps(body)


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    sink = SmtpSink(host="127.0.0.1", port=free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            sink.messages.append(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "message": message_from_bytes(envelope.content, policy=policy.default),
                }
            )
            return "250 Message accepted for delivery"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        if ok:
            sink.logins.append(data.login.decode())
        return AuthResult(success=ok)

    controller = Controller(
        Handler(), hostname=sink.host, port=sink.port, authenticator=authenticator, auth_require_tls=False
    )
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@dataclass
class Receiver:
    """The local webhook endpoint: ``url(status)`` answers ``status``; ``requests`` holds (path, headers, json)."""

    root: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def url(self, status: int = 200) -> str:
        return f"{self.root}/hook/{status}"

    def connection(self, status: int = 200, **extra: Any) -> str:
        return json.dumps(
            {"conn_type": "http", "host": self.url(status), "extra": {"headers": {"X-Alert-Token": "tok-123"}} | extra}
        )

    def bodies(self, event: str | None = None) -> list[dict[str, Any]]:
        return [r["json"] for r in self.requests if event is None or r["json"].get("event") == event]


@pytest.fixture
def webhook_receiver() -> Iterator[Receiver]:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from sim.threaded_server import ThreadedServer

    holder: dict[str, Receiver] = {}

    async def hook(request: Request) -> JSONResponse:
        status = int(request.path_params["status"])
        holder["r"].requests.append(
            {"path": request.url.path, "headers": dict(request.headers), "json": await request.json()}
        )
        holder["r"].arrived.set()
        return JSONResponse({"ok": status < 300}, status_code=status)

    app = Starlette(routes=[Route("/hook/{status:int}", hook, methods=["POST"])])
    with ThreadedServer(app) as server:
        holder["r"] = Receiver(root=server.root_url)
        yield holder["r"]
