"""Backtest throughput: 100 symbols x 10 years of the simulator's bars (raw -> dbt -> mart), each shipped rule
strategy once (bars/s, the share of the time inside the strategies' generate()), then the wall time of a
parameter sweep (>= 20 combinations, in a process pool as wide as the machine's cores, like mapped tasks).
``BENCH_BT_SYMBOLS``, ``BENCH_BT_YEARS``, ``BENCH_BT_COMBOS`` and ``BENCH_BT_WORKERS`` change the sizes.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench.common import scratch_database

SYMBOLS = int(os.environ.get("BENCH_BT_SYMBOLS", "100"))
SESSIONS = int(os.environ.get("BENCH_BT_YEARS", "10")) * 252
COMBOS = int(os.environ.get("BENCH_BT_COMBOS", "20"))
WORKERS = int(os.environ.get("BENCH_BT_WORKERS", str(os.cpu_count() or 1)))
_HISTORY = None  # the worker processes inherit it (fork)


def _one(overrides: dict) -> tuple[dict, float, float]:
    from include.backtest.engine import apply_overrides, run_backtest
    from include.config import get_strategy

    result = run_backtest(apply_overrides(get_strategy(2), overrides), _HISTORY)
    return overrides, result.metrics["sharpe"], result.seconds


def main() -> None:
    global _HISTORY
    from include.backtest.engine import load_history, run_backtest
    from include.config import get_strategy
    from include.marketdata import db
    from sim.synthetic import build_mart, load_simulator_bars

    symbols = [f"BT{i:04d}" for i in range(SYMBOLS)]
    with scratch_database("bench_backtest") as dsn:
        started = time.perf_counter()
        rows = load_simulator_bars(dsn, symbols, SESSIONS, start=__import__("datetime").date(2012, 1, 3))
        with tempfile.TemporaryDirectory() as tmp:
            build_mart(dsn, Path(tmp))
        print(f"setup: {rows:,} simulator bars -> raw -> dbt mart in {time.perf_counter() - started:.1f} s")
        with db.connection(dsn) as conn:
            started = time.perf_counter()
            _HISTORY = load_history(conn, symbols)
            read_s = time.perf_counter() - started
    bars = _HISTORY.bars
    print(f"read the mart history ({SYMBOLS} symbols x {len(_HISTORY.dates)} sessions = {bars:,} bars): "
          f"{read_s:.2f} s ({bars / read_s:,.0f} bars/s)")
    for sid in (1, 2, 3):
        config = get_strategy(sid)
        result = run_backtest(config, _HISTORY)
        m = result.metrics
        print(f"{config.name:22s}: {result.seconds:6.2f} s = {bars / result.seconds:9,.0f} bars/s "
              f"(generate() {result.strategy_seconds / result.seconds:4.0%}); {len(result.fills):5d} fills, "
              f"{m['trade_count']:4.0f} round trips, Sharpe {m['sharpe']:+.2f}, max DD {m['max_drawdown']:.1%}")
    grid = {"signal.oversold": [20, 25, 30, 35, 40], "signal.overbought": [60, 65, 70, 75, 80],
            "risk.min_confidence": [0.5, 0.7]}
    combos = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())][:COMBOS]
    started = time.perf_counter()
    with ProcessPoolExecutor(WORKERS) as pool:
        results = list(pool.map(_one, combos))
    wall = time.perf_counter() - started
    best = max(results, key=lambda r: r[1])
    print(f"sweep of {len(combos)} combinations (rsi_mean_reversion, {WORKERS} processes): {wall:.1f} s wall, "
          f"{sum(r[2] for r in results):.1f} s of backtests, {len(combos) * bars / wall:,.0f} bars/s; "
          f"best Sharpe {best[1]:+.2f} at {best[0]}")


if __name__ == "__main__":
    main()
