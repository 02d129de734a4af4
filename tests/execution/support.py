"""Helpers shared by the execution tests: order plans, simulator admin calls, ledger reads."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import httpx
import psycopg2

from include.execution import OrderPlan, RunContext

ORDER_POST = "/iserver/account/{acct}/orders"
DAG_ID = "ibkr_trading_strategy"


def admin(sim: Any, path: str, body: dict | None = None) -> dict:
    resp = httpx.post(f"{sim.admin_url}{path}", json=body or {}, timeout=10)
    resp.raise_for_status()
    return resp.json()


def fault(sim: Any, **spec: Any) -> None:
    admin(sim, "/faults", spec)


def clear_faults(sim: Any) -> None:
    httpx.delete(f"{sim.admin_url}/faults", timeout=10).raise_for_status()


def book(sim: Any) -> dict[str, Any]:
    resp = httpx.get(f"{sim.admin_url}/orders", timeout=10)
    resp.raise_for_status()
    return resp.json()


def orders_by_coid(sim: Any) -> Counter[str]:
    """How many orders the simulator's book holds per cOID (must never exceed 1)."""
    return Counter(o["cOID"] for o in book(sim)["orders"])


def stats(sim: Any) -> dict[str, Any]:
    return httpx.get(f"{sim.admin_url}/stats", timeout=10).json()


def order_posts(sim: Any) -> int:
    """Requests that reached the placement route /iserver/account/{acct}/orders (only POST is routed there;
    /iserver/account/orders without an account is the live-orders GET)."""
    by_path = stats(sim)["by_path"]
    return sum(n for path, n in by_path.items()
               if path.startswith("/iserver/account/") and path.endswith("/orders") and path.count("/") == 4)


def order_endpoint_hits(sim: Any) -> dict[str, int]:
    """Every request to an order endpoint: placement, reply, live orders, status, trades, cancel, what-if."""
    order_words = ("/orders", "/order/", "/reply/", "/trades", "/questions")
    return {p: n for p, n in stats(sim)["by_path"].items() if any(w in p for w in order_words)}


SESSION = date(2026, 1, 5)  # the exchange session the test decisions are for (part of the intent id)


def plan(symbol: str, side: str = "BUY", qty: float = 3, order_type: str = "MKT", limit: float | None = None,
         strategy_id: int | str = 1, ref_price: float = 100.0, session: date = SESSION,
         position_before: float | None = None) -> OrderPlan:
    return OrderPlan(
        strategy_id=strategy_id, symbol=symbol, side=side, quantity=qty, ref_price=ref_price,  # type: ignore[arg-type]
        order_type=order_type, limit_price=limit, session_date=session,  # type: ignore[arg-type]
        position_before=position_before,
        signal={"action": side, "confidence": 0.9, "model": "sma_crossover"},
        risk={"approved": True, "checks": ["confidence", "max_order_notional"]},
        dq={"verdict": "pass", "suite": "fct_latest_features"},
    )


def run_ctx(run_id: str, mode: str = "paper", try_number: int = 1) -> RunContext:
    return RunContext(dag_id=DAG_ID, run_id=run_id, mode=mode, try_number=try_number,  # type: ignore[arg-type]
                      mlflow_run_id="0f1e2d3c4b5a69788796a5b4c3d2e1f0")


def rows(dsn: str, sql: str, args: tuple = ()) -> list[tuple]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()
