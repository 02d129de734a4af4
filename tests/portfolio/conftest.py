"""Fixtures for the portfolio tests: an unpaced client against the reset simulator (``sim`` of tests/execution:
fill_mode immediate, no order questions), paper orders filled through the real executor, and the alert webhook
receiver of tests/gateway."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.dbt.conftest import dbt as dbt  # fixture: the project in-process dbt run
from tests.execution.conftest import make_client
from tests.execution.conftest import sim as sim  # fixture
from tests.execution.support import SESSION, plan, run_ctx
from tests.gateway.conftest import webhook as webhook  # fixture

PORTFOLIO_RAW = ("portfolio_positions", "account_summary", "account_ledger", "broker_orders", "broker_trades")


@pytest.fixture
def clean_db(clean_db: str) -> str:
    """The root ``clean_db`` without this package's raw tables either (the code recreates them)."""
    import psycopg2

    with psycopg2.connect(clean_db) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS " + ", ".join(f"raw.{t}" for t in PORTFOLIO_RAW))
    return clean_db


@pytest.fixture
def client(sim: Any) -> Iterator[Any]:
    with make_client(sim) as c:
        c.ensure_session()
        yield c


@pytest.fixture
def paper_fills(clean_db: str, client: Any) -> Callable[..., Any]:
    """``paper_fills(run_id, orders)``: paper orders through ``execute_intents``, each call one session later (a
    strategy takes one decision per symbol and session)."""
    from include.execution import execute_intents

    calls: list[str] = []

    def _fill(run_id: str, orders: list[tuple]) -> Any:
        """(symbol, side, qty) is a MKT order; (symbol, side, qty, limit) a LMT order (far away: stays working)."""
        session = SESSION + timedelta(days=len(calls))
        calls.append(run_id)
        plans = [plan(o[0], o[1], o[2], session=session) if len(o) == 3
                 else plan(o[0], o[1], o[2], "LMT", o[3], session=session) for o in orders]
        return execute_intents(plans, run_ctx(run_id, "paper"), dsn=clean_db, broker=client, settle_interval_s=0.05)

    return _fill


@pytest.fixture
def snapshot(clean_db: str, client: Any) -> Callable[[str], dict[str, int]]:
    """``snapshot(run_key)``: fetch from the simulator and load into raw.*, as the DAG's snapshot task does."""
    from include.portfolio.loaders import fetch_snapshot, load_snapshot

    def _snap(run_key: str) -> dict[str, int]:
        return load_snapshot(clean_db, fetch_snapshot(client, clean_db, run_key))

    return _snap
