"""``make bench``: run every benchmark and print its figures.

``python -m bench [name ...]`` runs a subset: ingestion, concurrency, dag_parse, indicators, cosmos,
cosmos_scheduler (P4 under the real scheduler), orders, trading, mlflow_scheduler (P7 under the real scheduler),
backtest. The last lines are a table of the P1-P8 figures with their goals.
Sizes can be reduced for a quick look, e.g. ``BENCH_SYMBOLS=50 BENCH_YEARS=2 make bench``.
"""

from __future__ import annotations

import os
import sys
import time

from bench import (
    backtest,
    common,
    concurrency,
    cosmos,
    cosmos_scheduler,
    dag_parse,
    indicators,
    ingestion,
    mlflow_scheduler,
    orders,
    trading,
)

BENCHMARKS = {
    "dag_parse": dag_parse.main,
    "concurrency": concurrency.main,
    "ingestion": ingestion.main,
    "indicators": indicators.main,
    "cosmos": cosmos.main,
    "cosmos_scheduler": cosmos_scheduler.main,
    "orders": orders.main,
    "trading": trading.main,
    "mlflow_scheduler": mlflow_scheduler.main,
    "backtest": backtest.main,
}


def main(names: list[str]) -> int:
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        print(f"unknown benchmark(s) {sorted(unknown)}; choose from {sorted(BENCHMARKS)}", file=sys.stderr)
        return 2
    for name in names or list(BENCHMARKS):
        print(f"\n### {name}", flush=True)
        started = time.monotonic()
        environ = dict(os.environ)
        try:
            BENCHMARKS[name]()
        finally:  # what one benchmark sets (e.g. ingestion's IBKR_RATE_PER_SEC=0) must not reach the next
            os.environ.clear()
            os.environ.update(environ)
        print(f"({name} took {time.monotonic() - started:.1f} s)", flush=True)
    if common.FIGURES:
        print("\n### summary: the goals of issue #14, each measured in this run (A / B like for like)")
        print(common.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
