"""Thread-safe client-side pacing for the CP Gateway (§9): a gateway-wide rate, per-endpoint sliding
windows and a cap on concurrent history requests. Callers sleep; nobody busy-waits. With a ``PacingLedger``
(pacing_ledger.py) the windows are kept in PostgreSQL and shared by every process that paces the same gateway.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from include.ibkr.pacing_ledger import PacingLedger

# §9 per-endpoint limits as (path regex, max requests, per seconds). Paths exclude the /v1/api prefix.
DEFAULT_ENDPOINT_LIMITS: tuple[tuple[str, int, float], ...] = (
    (r"^/iserver/marketdata/snapshot$", 10, 1.0),
    (r"^/iserver/account/orders$", 1, 5.0),
    (r"^/iserver/account/trades$", 1, 5.0),
    (r"^/iserver/account/pnl/partitioned$", 1, 5.0),
    (r"^/portfolio/(sub)?accounts$", 1, 5.0),
    (r"^/iserver/scanner/params$", 1, 900.0),
    (r"^/iserver/scanner/run$", 1, 1.0),
    (r"^/fyi/", 1, 1.0),
    (r"^/tickle$", 1, 1.0),
    (r"^/sso/validate$", 1, 60.0),
)
HISTORY_PATH = re.compile(r"^/iserver/marketdata/history$")
# The gateway counts requests when they arrive, we when they leave: without a guard, transit jitter
# lets request n+1 land inside the gateway's window and draw a 429 (seen against the simulator).
WINDOW_GUARD_S = 0.05


class _Window:
    """Sliding-window log: at most ``limit`` requests in any ``period`` seconds."""

    __slots__ = ("limit", "name", "period", "stamps")

    def __init__(self, name: str, limit: int, period: float) -> None:
        self.name, self.limit, self.period = name, limit, period
        self.stamps: deque[float] = deque()

    def delay(self, now: float) -> float:
        while self.stamps and self.stamps[0] <= now - self.period:
            self.stamps.popleft()
        return 0.0 if len(self.stamps) < self.limit else self.stamps[0] + self.period - now


_SHARED: dict[tuple[Any, ...], RateLimiter] = {}
_SHARED_LOCK = threading.Lock()


def shared_limiter(gateway: str, rate_per_sec: float | None, *, max_concurrent_history: int | None,
                   endpoint_limits: Sequence[tuple[str, int, float]], ledger_dsn: str | None = None) -> RateLimiter:
    """One limiter per gateway in this process: IBKR paces the gateway, not a client, so consecutive or concurrent
    clients (one per task under dag.test(), threads) share its windows instead of each starting empty and drawing
    429s. ``ledger_dsn``: the windows live in that PostgreSQL database (``PacingLedger``), shared with every other
    process and host pacing the gateway; without it, separate processes only have the gateway's 429 and back-off."""
    key = (gateway, rate_per_sec, max_concurrent_history, tuple(endpoint_limits), ledger_dsn)
    with _SHARED_LOCK:
        if key not in _SHARED:
            ledger = None
            if ledger_dsn:
                from include.ibkr.pacing_ledger import PacingLedger

                ledger = PacingLedger(ledger_dsn, gateway)
            _SHARED[key] = RateLimiter(rate_per_sec, endpoint_limits=endpoint_limits,
                                       max_concurrent_history=max_concurrent_history, ledger=ledger)
        return _SHARED[key]


class RateLimiter:
    """``with limiter.acquire(path): ...`` blocks until the request may go out.

    ``rate_per_sec`` None/0 disables the gateway-wide limit, ``endpoint_limits=()`` the per-endpoint
    windows, ``max_concurrent_history`` None/0 the history cap. ``clock``/``sleep`` are injectable. ``ledger``:
    reserve every request's slot in that shared ``PacingLedger`` instead of this object's own windows.
    """

    def __init__(
        self,
        rate_per_sec: float | None = 10.0,
        *,
        endpoint_limits: Sequence[tuple[str, int, float]] = DEFAULT_ENDPOINT_LIMITS,
        max_concurrent_history: int | None = 5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        guard_s: float = WINDOW_GUARD_S,
        ledger: PacingLedger | None = None,
    ) -> None:
        self._clock, self._sleep = clock, sleep
        self.ledger = ledger
        self._lock = threading.Lock()
        self._global: _Window | None = None
        if rate_per_sec:
            # A fractional rate r becomes n requests per n/r seconds (e.g. 0.5/s -> 1 per 2 s).
            n = max(1, int(rate_per_sec))
            self._global = _Window("gateway", n, n / rate_per_sec + guard_s)
        self._endpoints = [(re.compile(p), _Window(p, n, s + guard_s)) for p, n, s in endpoint_limits]
        self._history_cap = max_concurrent_history or None
        self._history_cond = threading.Condition(self._lock)
        self.history_inflight = 0
        self.history_max_inflight = 0
        self.waits = 0  # number of acquire() calls that had to block (rate or history cap)

    def _windows(self, path: str) -> list[_Window]:
        found = [w for rx, w in self._endpoints if rx.search(path)]
        return [self._global, *found] if self._global else found

    @contextmanager
    def acquire(self, path: str) -> Iterator[None]:
        is_history = self._history_cap is not None and HISTORY_PATH.search(path) is not None
        waited = False
        if is_history:
            # Take the concurrency slot first so a queued history call does not burn a rate slot.
            with self._history_cond:
                while self.history_inflight >= self._history_cap:  # type: ignore[operator]
                    waited = True
                    self._history_cond.wait()
                self.history_inflight += 1
                self.history_max_inflight = max(self.history_max_inflight, self.history_inflight)
        try:
            waited = self._reserve(self._windows(path)) or waited
            if waited:
                with self._lock:
                    self.waits += 1
            yield
        finally:
            if is_history:
                with self._history_cond:
                    self.history_inflight -= 1
                    self._history_cond.notify()

    def _reserve(self, windows: list[_Window]) -> bool:
        """Record one request in every window, sleeping (outside the lock) until all have room."""
        if self.ledger is not None:
            delay = self.ledger.reserve([(w.name, w.limit, w.period) for w in windows])
            if delay > 0:
                self._sleep(delay)
            return delay > 0
        waited = False
        while True:
            with self._lock:
                now = self._clock()
                delay = max((w.delay(now) for w in windows), default=0.0)
                if delay <= 0:
                    for w in windows:
                        w.stamps.append(now)
                    return waited
            waited = True
            self._sleep(delay)
