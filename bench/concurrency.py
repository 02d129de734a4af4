"""History concurrency reached against the gateway's 5-concurrent-request limit, and 429s seen.

The simulator enforces IBKR's limits (5 concurrent history requests, 10 req/s gateway-wide) and
adds latency to each history request so overlaps are real; 10 client threads compete.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx

from bench.common import simulator_process

REQUESTS = 60
THREADS = 10
LATENCY_MS = 400


def main() -> None:
    from include.ibkr.client import IBKRClient

    with simulator_process("--history-latency-ms", str(LATENCY_MS)) as (api, admin):
        with IBKRClient(api) as client:  # defaults: 10 req/s, 5 concurrent history requests
            client.ensure_session()
            contracts = [client.resolve_contract(s) for s in ("AAPL", "MSFT", "TSLA", "NVDA", "SPY")]
            httpx.post(f"{admin}/stats/reset").raise_for_status()
            end = datetime.now(UTC)
            t0 = time.perf_counter()
            with ThreadPoolExecutor(THREADS) as pool:
                list(pool.map(lambda i: client.history(contracts[i % 5].conid, period="30d", bar="1d",
                                                       start_time=end - timedelta(days=i)), range(REQUESTS)))
            elapsed = time.perf_counter() - t0
        stats = httpx.get(f"{admin}/stats").json()
    print(f"{REQUESTS} history requests from {THREADS} threads, {LATENCY_MS} ms server latency each")
    print(f"max concurrent history requests at the gateway: {stats['history_max_concurrent']} (limit 5)")
    print(f"HTTP 429 responses: {stats['http_429']} (goal 0)")
    ideal = min(5 * 1000 / LATENCY_MS, 10.0)  # 5 in flight at a time, and 10 req/s gateway-wide
    print(f"elapsed {elapsed:.2f} s -> {REQUESTS / elapsed:.1f} req/s (ceiling {ideal:.1f} req/s: 5 concurrent x "
          f"{LATENCY_MS} ms, capped by 10 req/s pacing)")


if __name__ == "__main__":
    main()
