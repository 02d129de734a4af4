"""Paper-order execution time per order against the simulator (fills immediately), for 10 and 100 orders.

IBKR's pacing stays ON on both sides (client 10 req/s, gateway limits), as against a real gateway: each
order costs a ledger insert, ``submitted`` before the POST, the POST (plus one reply per confirmation
question), the acknowledgement, and one order-status read for the fill. Contracts are resolved beforehand
(the signal step already has them), so the figure is execution only. Also times the idempotent re-run of
the same DAG run (ledger read, nothing sent).

Run: ``.venv/bin/python -c "import bench.orders as b; b.main()"`` (``BENCH_ORDER_COUNTS=10,100`` by default;
``BENCH_PG_ADMIN_URL`` picks the PostgreSQL server, else the embedded one).
"""

from __future__ import annotations

import os
import time
from datetime import date

import httpx

from bench.common import scratch_database, simulator_process

COUNTS = tuple(int(n) for n in os.environ.get("BENCH_ORDER_COUNTS", "10,100").split(","))


def _plans(contracts: list, last: dict[int, float], count: int, order_type: str, strategy: str) -> list:
    from include.execution import OrderPlan

    # one decision per (strategy, symbol, session): each measured batch is its own strategy so none is a repeat
    return [
        OrderPlan(strategy_id=strategy, symbol=c.symbol, side="BUY", quantity=1, conid=c.conid,
                  session_date=date.today(),
                  ref_price=last[c.conid], order_type=order_type,
                  limit_price=round(last[c.conid] * 1.01, 2) if order_type == "LMT" else None)
        for c in contracts[:count]
    ]  # fmt: skip


MKT_Q = ("o10151",)  # the MKT leg measures one confirmation round trip: accept its market-order warning here


def main() -> None:
    import logging

    from include.execution import RunContext, execute_intents
    from include.ibkr.client import IBKRClient

    # one INFO line per confirmed question and per executor run would bury the table (make bench runs this after
    # benches that set up Airflow's logging in the same process)
    for name in ("include", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    top = max(COUNTS)
    with simulator_process("--synthetic-symbols", str(top), "--fill-mode", "immediate") as (api, admin), \
            scratch_database("bench_orders") as dsn, IBKRClient(api, accepted_questions=MKT_Q) as paced, \
            IBKRClient(api, rate_per_sec=None, endpoint_pacing=False, accepted_questions=MKT_Q) as unpaced:  # fmt: skip
        paced.ensure_session()
        contracts = [paced.resolve_contract(f"SYN{i:04d}") for i in range(1, top + 1)]
        last = {s.conid: s.last for s in paced.snapshot(contracts, ("31",))}
        print(f"paper orders, simulator fill_mode=immediate, {top} symbols; 'paced' = IBKR's 10 req/s on both "
              "sides, 'unpaced' = pacing off (our own overhead: ledger writes, HTTP, parsing)")
        print(f"{'orders':>6} {'type':<34} {'pacing':<8} {'total s':>8} {'s/order':>8} {'req/order':>9} "
              f"{'re-run s':>8}")
        for pacing, client in (("paced", paced), ("unpaced", unpaced)):
            httpx.post(f"{admin}/config", json={"rate_limits": pacing == "paced"}).raise_for_status()
            for count in COUNTS:
                for order_type, questions in (("LMT", "no question"), ("MKT", "1 confirmation question")):
                    run = RunContext(dag_id="bench_orders", run_id=f"{pacing}-{order_type}-{count}", mode="paper")
                    plans = _plans(contracts, last, count, order_type, strategy=f"bench-{run.run_id}")
                    requests_before = httpx.get(f"{admin}/stats").json()["requests"]
                    t0 = time.perf_counter()
                    report = execute_intents(plans, run, dsn=dsn, broker=client)
                    elapsed = time.perf_counter() - t0
                    requests = httpx.get(f"{admin}/stats").json()["requests"] - requests_before
                    filled = sum(i.status == "filled" for i in report.intents)
                    if filled != count:
                        raise RuntimeError(f"only {filled}/{count} orders filled: {report.counts()}")
                    t1 = time.perf_counter()
                    again = execute_intents(plans, RunContext("bench_orders", run.run_id, "paper", try_number=2),
                                            dsn=dsn, broker=client)
                    rerun = time.perf_counter() - t1
                    assert len(again.skipped) == count and not again.submitted
                    print(f"{count:>6} {order_type + ' (' + questions + ')':<34} {pacing:<8} {elapsed:>8.2f} "
                          f"{elapsed / count:>8.3f} {requests / count:>9.1f} {rerun:>8.3f}")
        orders = httpx.get(f"{admin}/orders").json()["orders"]
        coids = [o["cOID"] for o in orders]
        print(f"simulator book: {len(orders)} orders, {len(coids) - len(set(coids))} duplicate cOIDs")


if __name__ == "__main__":
    main()
