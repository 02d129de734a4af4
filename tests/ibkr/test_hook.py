"""``IBKRHook``'s guide calls against the simulator and PostgreSQL: auth status, market data, positions, and orders
through the intent ledger (recorded first, cOID = intent id, never sent twice)."""

from __future__ import annotations

from datetime import date

import httpx
import psycopg2
import pytest

from include.ibkr.hook import IBKRHook


@pytest.fixture
def gateway(monkeypatch, simulator, clean_db):
    monkeypatch.setenv("IBKR_GATEWAY_URL", simulator.base_url)
    monkeypatch.setenv("MARKET_DB_URL", clean_db)
    return simulator


def _intents(dsn):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT intent_id, symbol, side, quantity, status, mode, dag_id, run_id FROM trading.order_intents")
        return cur.fetchall()


def test_check_auth_status(gateway):
    assert IBKRHook().check_auth_status().healthy is True
    httpx.post(f"{gateway.admin_url}/session", json={"state": "sso_only"}).raise_for_status()
    status = IBKRHook().check_auth_status()
    assert status.healthy is False and status.authenticated is False  # reported, not repaired
    assert httpx.get(f"{gateway.admin_url}/state").json()["session"] == "sso_only"


def test_get_market_data_with_the_guides_default_fields(gateway):
    data = IBKRHook().get_market_data(["AAPL", "googl"])
    assert set(data) == {"AAPL", "GOOGL"}
    assert all(set(row) == {"last", "bid", "ask"} and row["last"] > 0 for row in data.values())
    assert set(IBKRHook().get_market_data("MSFT", fields=["last", "volume"])["MSFT"]) == {"last", "volume"}
    with pytest.raises(ValueError, match="unknown market data field"):
        IBKRHook().get_market_data(["AAPL"], fields=["price"])


def test_get_portfolio_positions(gateway):
    positions = IBKRHook().get_portfolio_positions()
    assert isinstance(positions, list) and all(p.symbol and p.quantity is not None for p in positions)


def test_place_order_dry_run_goes_through_the_ledger(gateway):
    before = httpx.get(f"{gateway.admin_url}/orders").json()["orders"]
    order = {"strategy_id": 1, "symbol": "AAPL", "side": "BUY", "quantity": 3, "limit_price": 150.0,
             "dag_id": "my_dag", "run_id": "manual__1", "session_date": date(2026, 12, 3)}
    intent = IBKRHook().place_order(**order)
    assert intent.status == "simulated" and intent.mode == "dry_run" and intent.coid == intent.intent_id
    again = IBKRHook().place_order(**{**order, "run_id": "manual__2"})  # same decision: found, not taken again
    assert again.intent_id == intent.intent_id and again.run_id == "manual__1"
    assert len(_intents(IBKRHook().settings().market_db_url)) == 1
    assert httpx.get(f"{gateway.admin_url}/orders").json()["orders"] == before  # no order endpoint touched


def test_place_order_paper_sends_once_with_the_intent_id_as_coid(gateway):
    order = {"strategy_id": 1, "symbol": "MSFT", "side": "BUY", "quantity": 2, "limit_price": 1000.0,
             "dag_id": "my_dag", "run_id": "manual__1", "mode": "paper", "session_date": date(2026, 12, 3)}
    intent = IBKRHook().place_order(**order)
    assert intent.status in ("acknowledged", "filled") and intent.broker_order_id
    IBKRHook().place_order(**order)  # a retry of the same call
    book = [o for o in httpx.get(f"{gateway.admin_url}/orders").json()["orders"] if o.get("cOID") == intent.coid]
    assert len(book) == 1


def test_place_order_live_needs_the_opt_in(gateway, monkeypatch):
    from include.settings import LiveTradingNotAllowed

    monkeypatch.delenv("ALLOW_LIVE_TRADING", raising=False)
    with pytest.raises(LiveTradingNotAllowed):
        IBKRHook().place_order(strategy_id=1, symbol="MSFT", side="BUY", quantity=1, limit_price=10.0,
                               dag_id="d", run_id="r", mode="live")
    with psycopg2.connect(IBKRHook().settings().market_db_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('trading.order_intents') IS NULL")
        assert cur.fetchone()[0] is True  # refused before anything was recorded (the ledger is not even created)
