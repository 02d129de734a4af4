"""RateLimiter: gateway-wide rate, per-endpoint windows (fake clock) and the history cap (threads)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import pytest

from include.ibkr.ratelimit import WINDOW_GUARD_S, RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0, "the limiter must never sleep for zero (a busy-wait in disguise)"
        self.sleeps.append(seconds)
        self.now += seconds


def _run(limiter: RateLimiter, clock: FakeClock, path: str, n: int) -> list[float]:
    stamps = []
    for _ in range(n):
        with limiter.acquire(path):
            stamps.append(clock.now)
    return stamps


def _max_in_window(stamps: list[float], period: float) -> int:
    return max(sum(1 for s in stamps if t <= s < t + period) for t in stamps)


def test_global_rate_is_respected() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10.0, endpoint_limits=(), clock=clock, sleep=clock.sleep, guard_s=0)
    stamps = _run(limiter, clock, "/iserver/accounts", 35)
    assert _max_in_window(stamps, 1.0) == 10
    assert stamps[-1] - stamps[0] >= 3.0  # 35 requests at 10/s need at least 3 s
    # A sliding window lets a burst of 10 through, then blocks until the oldest stamp ages out.
    assert limiter.waits == 3 and clock.sleeps == [1.0, 1.0, 1.0]


def test_fractional_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(0.5, endpoint_limits=(), clock=clock, sleep=clock.sleep, guard_s=0)
    stamps = _run(limiter, clock, "/tickle", 3)
    assert [round(b - a, 6) for a, b in pairwise(stamps)] == [2.0, 2.0]


def test_per_endpoint_window_only_hits_its_path() -> None:
    clock = FakeClock()
    # default §9 windows, no global rate
    limiter = RateLimiter(None, clock=clock, sleep=clock.sleep, guard_s=0)
    orders = _run(limiter, clock, "/iserver/account/orders", 3)
    assert [round(b - a, 6) for a, b in pairwise(orders)] == [5.0, 5.0]
    before = clock.now
    _run(limiter, clock, "/iserver/account/DU123456/orders", 5)  # placement is not the 1/5 s GET
    _run(limiter, clock, "/iserver/marketdata/history", 5)
    assert clock.now == before
    sso = _run(limiter, clock, "/sso/validate", 2)
    assert sso[1] - sso[0] == 60.0
    snap = _run(limiter, clock, "/iserver/marketdata/snapshot", 20)
    assert _max_in_window(snap, 1.0) <= 10


def test_disabled_limiter_never_sleeps() -> None:
    clock = FakeClock()
    for rate in (None, 0):
        limiter = RateLimiter(
            rate, endpoint_limits=(), max_concurrent_history=None, clock=clock, sleep=clock.sleep
        )
        _run(limiter, clock, "/iserver/account/orders", 100)
        assert limiter.waits == 0 and clock.sleeps == []


def test_history_semaphore_caps_concurrency() -> None:
    limiter = RateLimiter(None, endpoint_limits=(), max_concurrent_history=3)
    active = 0
    peak = 0
    lock = threading.Lock()

    def fetch(_: int) -> None:
        nonlocal active, peak
        with limiter.acquire("/iserver/marketdata/history"):
            with lock:
                active += 1
                peak = max(peak, active)
            time.sleep(0.03)
            with lock:
                active -= 1

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(fetch, range(20)))
    assert peak == 3 and limiter.history_max_inflight == 3
    assert limiter.history_inflight == 0 and limiter.waits > 0


def test_history_slot_released_on_error() -> None:
    limiter = RateLimiter(None, endpoint_limits=(), max_concurrent_history=1)
    for _ in range(3):
        try:
            with limiter.acquire("/iserver/marketdata/history"):
                raise RuntimeError("boom")
        except RuntimeError:
            pass
    assert limiter.history_inflight == 0


def test_windows_keep_a_guard_for_transit_jitter():
    # The gateway counts arrivals: request 11 must leave a little after the 1 s window, not on its edge.
    clock = FakeClock()
    limiter = RateLimiter(10.0, endpoint_limits=(), clock=clock, sleep=clock.sleep)
    for _ in range(11):
        with limiter.acquire("/iserver/accounts"):
            pass
    assert clock.sleeps == [pytest.approx(1.0 + WINDOW_GUARD_S)]


def test_clients_of_one_gateway_share_its_pacing_when_asked() -> None:
    """IBKR paces the gateway: the hook's clients (one per task under dag.test()) share one limiter per gateway,
    so a new client does not start with an empty window and burst into 429s; plain clients keep their own."""
    from include.ibkr.client import IBKRClient

    url = "http://127.0.0.1:9/shared-pacing-test/v1/api"
    with IBKRClient(url, shared_pacing=True) as a, IBKRClient(url, shared_pacing=True) as b, \
            IBKRClient(url + "/other", shared_pacing=True) as other, IBKRClient(url) as plain:
        assert a.limiter is b.limiter
        assert other.limiter is not a.limiter and plain.limiter is not a.limiter
