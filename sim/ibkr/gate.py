"""ASGI middleware in front of `/v1/api` (and `/v1/portal`): statistics, fault injection (before or, with
`after`, instead of the answer), then the session/priming/pacing gate of `SimState.gate`."""

from __future__ import annotations

import asyncio
from fnmatch import fnmatch

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sim.ibkr.limits import MALFORMED_BODY, Fault
from sim.ibkr.state import SimState

# IBeam calls some session routes under /v1/portal (§1); both prefixes serve the same API.
API_PREFIXES = ("/v1/api", "/v1/portal")


async def _send_raw(send: Send, status: int, body: bytes, content_type: bytes | None) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if content_type:
        headers.append((b"content-type", content_type))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _client_host(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


class GatewayGate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        prefix = next((p for p in API_PREFIXES if path == p or path.startswith(p + "/")), None)
        if prefix is None:
            await self.app(scope, receive, send)
            return
        sim: SimState = scope["app"].state.sim
        sub, method, stats = path[len(prefix) :] or "/", scope["method"], sim.stats
        stats.requests += 1
        stats.by_path[sub] += 1

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                stats.by_status[message["status"]] += 1
                if message["status"] == 429:
                    stats.refused_by_path[sub] += 1
            await send(message)

        allowed = sim.cfg.allowed_clients
        if allowed and not any(fnmatch(_client_host(scope), pattern) for pattern in allowed):
            await _send_raw(counted, 404, b"Access Denied", b"text/plain")  # §1 IP allow-list (ibeam#239)
            return
        fault = sim.faults.match(method, sub)  # faults come before normal handling (`after` ones wrap it)
        if fault is not None and fault.after:
            stats.faults_applied += 1
            await self._answer_lost(scope, receive, counted, sim, method, sub, fault)
            return
        if fault is not None:
            stats.faults_applied += 1
            if fault.latency_ms:
                await asyncio.sleep(fault.latency_ms / 1000)
            if fault.status is not None:
                body = fault.response_body()
                await _send_raw(counted, fault.status, body, b"application/json" if body else None)
                return
            if fault.malformed:  # HTTP 200, JSON content type, invalid JSON text
                await _send_raw(counted, 200, MALFORMED_BODY, b"application/json")
                return
        refusal = sim.gate(method, sub)
        if refusal is not None:
            await refusal(scope, receive, counted)
            return
        await self.app(scope, receive, counted)

    async def _answer_lost(
        self, scope: Scope, receive: Receive, send: Send, sim: SimState, method: str, sub: str, fault: Fault
    ) -> None:
        """An `after` fault: handle the request for real, then replace or delay its answer, so the client
        cannot tell whether the gateway acted (an order placed but its acknowledgement lost)."""
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        refusal = sim.gate(method, sub)
        await (refusal or self.app)(scope, receive, hold)
        if fault.latency_ms:
            await asyncio.sleep(fault.latency_ms / 1000)
        if fault.status is not None:
            body = fault.response_body()
            await _send_raw(send, fault.status, body, b"application/json" if body else None)
        elif fault.malformed:
            await _send_raw(send, 200, MALFORMED_BODY, b"application/json")
        else:
            for message in held:  # a late but complete answer: the client may have timed out by now
                await send(message)
