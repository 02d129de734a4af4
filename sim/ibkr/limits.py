"""Pacing (§9, checklist 7), request statistics and fault injection rules."""

from __future__ import annotations

import itertools
import re
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

# (method or None for any, path pattern, requests, window seconds): the §9 per-endpoint table.
ENDPOINT_LIMITS: tuple[tuple[str | None, re.Pattern[str], int, float], ...] = (
    ("GET", re.compile(r"^/iserver/marketdata/snapshot$"), 10, 1.0),
    ("GET", re.compile(r"^/iserver/account/orders$"), 1, 5.0),
    ("GET", re.compile(r"^/iserver/account/trades$"), 1, 5.0),
    ("GET", re.compile(r"^/iserver/account/pnl/partitioned$"), 1, 5.0),
    ("GET", re.compile(r"^/portfolio/(sub)?accounts$"), 1, 5.0),
    (None, re.compile(r"^/tickle$"), 1, 1.0),
    ("GET", re.compile(r"^/sso/validate$"), 1, 60.0),
)


class RateLimiter:
    """Sliding windows on the monotonic clock (pacing is real time, whatever the simulated clock says)."""

    def __init__(self) -> None:
        self._global: deque[float] = deque()
        self._endpoint: dict[int, deque[float]] = {}
        self.penalty_until = 0.0

    def allow(self, method: str, path: str, global_rate: float, penalty_s: float) -> bool:
        now = time.monotonic()
        if now < self.penalty_until:
            return False
        windows = [(self._global, max(1, int(global_rate)), 1.0)]
        for i, (m, pattern, limit, span) in enumerate(ENDPOINT_LIMITS):
            if (m is None or m == method) and pattern.match(path):
                windows.append((self._endpoint.setdefault(i, deque()), limit, span))
        for hits, limit, span in windows:
            while hits and hits[0] <= now - span:
                hits.popleft()
            if len(hits) >= limit:
                if penalty_s > 0:  # §9 penalty box: everything is refused for a while
                    self.penalty_until = now + penalty_s
                return False
        for hits, _, _ in windows:
            hits.append(now)
        return True


@dataclass
class Stats:
    requests: int = 0
    by_path: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    refused_by_path: Counter[str] = field(default_factory=Counter)  # the 429s, by path
    history_requests: int = 0
    history_inflight: int = 0
    history_max_concurrent: int = 0
    history_429: int = 0
    faults_applied: int = 0

    def reset(self) -> None:
        # Requests still running will decrement `history_inflight`, so it survives the reset.
        self.__dict__.update(Stats(history_inflight=self.history_inflight).__dict__)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_path": dict(self.by_path),
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "http_429": self.by_status.get(429, 0),
            "http_429_by_path": dict(self.refused_by_path),
            "history_requests": self.history_requests,
            "history_inflight": self.history_inflight,
            "history_max_concurrent": self.history_max_concurrent,
            "history_429": self.history_429,
            "faults_applied": self.faults_applied,
        }


_UNSET = object()


@dataclass
class Fault:
    id: int
    path: str
    pattern: re.Pattern[str]
    method: str | None
    status: int | None
    body: Any
    latency_ms: int
    malformed: bool
    times: int  # remaining applications; -1 = until cleared
    applied: int = 0
    # after=True: the request is handled normally first, then its answer is replaced (status/malformed) or
    # delayed (latency): the gateway acted but the client never hears it (lost ack, 5xx after acceptance).
    after: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "method": self.method,
            "status": self.status,
            "body": None if self.body is _UNSET else self.body,
            "latency_ms": self.latency_ms,
            "malformed": self.malformed,
            "times": self.times,
            "applied": self.applied,
            "after": self.after,
        }

    def response_body(self) -> bytes:
        """401 has an empty body (§3.1); `"body": null` also means empty; default `{"error": phrase}`."""
        import json

        if self.status == 401 or self.body is None:
            return b""
        if self.body is _UNSET:
            return json.dumps({"error": HTTPStatus(self.status).phrase}).encode()
        return json.dumps(self.body).encode()


MALFORMED_BODY = b'{"serverId":"0","symbol":"AAPL","data":[{"o":171.05,"c":'


class FaultBook:
    def __init__(self) -> None:
        self.rules: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, spec: dict[str, Any]) -> Fault:
        if not isinstance(spec.get("path"), str):
            raise ValueError("path (a regex string) is required")
        status, latency = spec.get("status"), int(spec.get("latency_ms") or 0)
        malformed = bool(spec.get("malformed", False))
        if status is None and not latency and not malformed:
            raise ValueError("a fault needs status, latency_ms or malformed")
        if status is not None and not 100 <= int(status) <= 599:
            raise ValueError("status must be an HTTP status code")
        method = spec.get("method")
        fault = Fault(
            id=next(self._ids),
            path=spec["path"],
            pattern=re.compile(spec["path"]),
            method=method.upper() if method else None,
            status=int(status) if status is not None else None,
            body=spec.get("body", _UNSET),
            latency_ms=latency,
            malformed=malformed,
            times=int(spec.get("times", 1)),
            after=bool(spec.get("after", False)),
        )
        if fault.times == 0:
            raise ValueError("times must be >= 1 or -1")
        self.rules.append(fault)
        return fault

    def match(self, method: str, path: str) -> Fault | None:
        """First matching rule (insertion order); consumes one of its `times`."""
        for fault in self.rules:
            if (fault.method is None or fault.method == method) and fault.pattern.search(path):
                fault.applied += 1
                if fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self.rules.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        self.rules.clear()

    def as_list(self) -> list[dict[str, Any]]:
        return [f.as_dict() for f in self.rules]
