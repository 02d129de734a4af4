"""Orders (§8, checklist 6): reply chains, cOID duplicates, lifecycle, id types, live orders, portfolio."""

from __future__ import annotations

import re
from datetime import timedelta

from starlette.testclient import TestClient

from tests.sim.sim_support import AAPL, ADMIN, API, IN_SESSION, SPY, WEEKEND, ClientFactory

ACCT = "DU1234567"
ORDERS = f"{API}/iserver/account/{ACCT}/orders"


def order(**fields: object) -> dict:
    base = {"conid": AAPL, "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 10}
    return {**base, **fields}


def place(client: TestClient, body: object) -> list[dict]:
    """Place and confirm every question; returns the accepted array."""
    r = client.post(ORDERS, json=body)
    assert r.status_code == 200, r.text
    answer = r.json()
    for _ in range(10):
        if "order_id" in answer[0]:
            return answer
        answer = client.post(f"{API}/iserver/reply/{answer[0]['id']}", json={"confirmed": True}).json()
    raise AssertionError("question chain did not end")


def preflight_live_orders(client: TestClient) -> None:
    assert client.get(f"{API}/iserver/account/orders").json() == {"orders": [], "snapshot": False}


def test_two_question_chain_then_order_id_string(client: TestClient) -> None:
    # MKT and notional > 100k: o10151 then o451, one question per response (§8.2). 1000 AAPL (anchored near
    # $270, never below 0.69x) is > 100k and well inside the account's 1M of buying power.
    first = client.post(ORDERS, json={"orders": [order(quantity=1_000)]}).json()
    assert len(first) == 1 and set(first[0]) == {"id", "message", "isSuppressed", "messageIds"}
    assert re.fullmatch(r"[0-9a-f-]{36}", first[0]["id"]) and first[0]["messageIds"] == ["o10151"]
    assert first[0]["isSuppressed"] is False and isinstance(first[0]["message"][0], str)
    second = client.post(f"{API}/iserver/reply/{first[0]['id']}", json={"confirmed": True}).json()
    assert second[0]["messageIds"] == ["o451"] and second[0]["id"] != first[0]["id"]
    accepted = client.post(f"{API}/iserver/reply/{second[0]['id']}", json={"confirmed": True}).json()
    assert set(accepted[0]) == {"order_id", "order_status", "encrypt_message"}
    assert isinstance(accepted[0]["order_id"], str) and accepted[0]["order_id"].isdigit()
    assert accepted[0]["order_status"] == "Submitted"  # session open at IN_SESSION
    # The id is single-use.
    again = client.post(f"{API}/iserver/reply/{second[0]['id']}", json={"confirmed": True})
    assert (again.status_code, again.json()) == (400, {"error": "reply id not found"})


def test_reply_false_and_configured_questions(client: TestClient) -> None:
    client.post(f"{ADMIN}/config", json={"questions": ["o354", "o383"]})
    q = client.post(
        ORDERS, json=[order(orderType="LMT", price=1.0, quantity=1, cOID="x-1")]
    ).json()  # bare array
    assert q[0]["messageIds"] == ["o354"]
    r = client.post(f"{API}/iserver/reply/{q[0]['id']}", json={"confirmed": False})
    assert (r.status_code, r.json()) == (400, {"error": "order not confirmed", "statusCode": 400})
    # Never submitted, so the cOID can be used again.
    assert client.post(ORDERS, json=[order(cOID="x-1")]).json()[0]["messageIds"] == ["o354"]


def test_duplicate_coid_exact_text(client: TestClient) -> None:
    client.post(f"{API}/iserver/questions/suppress", json={"messageIds": ["o10151", "o163", "o451"]})
    place(client, {"orders": [order(cOID="abc-1")]})
    r = client.post(ORDERS, json={"orders": [order(cOID="abc-1")]})
    assert r.status_code == 400
    assert r.json() == {"error": "Order couldn't be submitted: Local order ID=abc-1 is already registered."}
    # A cOID waiting on a question is registered too.
    client.post(f"{API}/iserver/questions/suppress/reset")
    pending = client.post(ORDERS, json={"orders": [order(cOID="abc-2")]}).json()
    assert "id" in pending[0]
    assert "already registered" in client.post(ORDERS, json={"orders": [order(cOID="abc-2")]}).json()["error"]
    # ... for 24 hours of simulated time.
    client.post(
        f"{ADMIN}/clock", json={"now": (IN_SESSION + timedelta(hours=25)).isoformat(), "keep_session": True}
    )
    client.post(f"{API}/iserver/questions/suppress", json={"messageIds": ["o10151"]})
    assert place(client, {"orders": [order(cOID="abc-1")]})[0]["order_id"].isdigit()
    coids = [o["cOID"] for o in client.get(f"{ADMIN}/orders").json()["orders"]]
    assert coids == ["abc-1", "abc-1"]


def test_suppressed_questions_are_not_asked(client: TestClient) -> None:
    status = client.post(f"{API}/iserver/questions/suppress", json={"messageIds": ["o10151"]}).json()
    assert status == {"status": "submitted"}
    assert "order_id" in client.post(ORDERS, json={"orders": [order()]}).json()[0]


def test_suppression_holds_for_the_brokerage_session_only(client: TestClient) -> None:
    client.post(f"{ADMIN}/config", json={"questions": ["o163", "o451"]})
    client.post(f"{API}/iserver/questions/suppress", json={"messageIds": ["o163"]})
    assert client.get(f"{ADMIN}/state").json()["suppressed_questions"] == ["o163"]
    assert client.post(ORDERS, json=[order(cOID="s-1")]).json()[0]["messageIds"] == ["o451"]  # o163 not asked
    # §8.2 "for the session": a new brokerage session asks every question again.
    client.post(f"{API}/iserver/reauthenticate")
    client.get(f"{API}/iserver/accounts")
    assert client.get(f"{ADMIN}/state").json()["suppressed_questions"] == []
    assert client.post(ORDERS, json=[order(cOID="s-2")]).json()[0]["messageIds"] == ["o163"]


def test_an_unknown_message_id_is_asked_with_a_generic_text(client: TestClient) -> None:
    client.post(f"{ADMIN}/config", json={"questions": ["o999"]})
    q = client.post(ORDERS, json=[order(orderType="LMT", price=10.0, quantity=2, cOID="u-1")]).json()
    assert q[0]["messageIds"] == ["o999"] and q[0]["isSuppressed"] is False
    assert q[0]["message"] == ['The following order "BUY 2 AAPL NASDAQ.NMS @ 10.0" requires confirmation '
                               "(o999).\nAre you sure you want to submit this order?"]
    declined = client.post(f"{API}/iserver/reply/{q[0]['id']}", json={"confirmed": False})
    assert declined.status_code == 400
    assert client.get(f"{ADMIN}/orders").json() == {"orders": [], "pending": []}


def test_validation_errors(client: TestClient) -> None:
    cases = [
        (order(orderType="LMT"), "invalid order price fields"),
        (order(side="HOLD"), "invalid side: HOLD"),
        (order(conid=1), "invalid conid: 1"),
        (order(quantity=0), "invalid quantity: must be a number > 0"),
        (order(tif="FOK"), "invalid tif: FOK"),
        (order(orderType="PEG"), "invalid orderType: PEG"),
    ]
    for body, message in cases:
        r = client.post(ORDERS, json={"orders": [body]})
        assert (r.status_code, r.json()) == (400, {"error": message})
    assert client.post(f"{API}/iserver/account/DU999/orders", json={"orders": [order()]}).status_code == 400
    assert client.post(f"{API}/iserver/reply/nope", json={"confirmed": True}).json() == {
        "error": "reply id not found"
    }


def test_immediate_fill_lifecycle_and_portfolio(make_client: ClientFactory) -> None:
    c = make_client(fill_mode="immediate", primed=True, questions=())
    preflight_live_orders(c)
    accepted = place(c, {"orders": [order(side="Buy", quantity=10, cOID="buy-1")]})
    order_id = int(accepted[0]["order_id"])
    status = c.get(f"{API}/iserver/account/order/status/{order_id}").json()
    assert status["order_id"] == order_id and isinstance(status["order_id"], int)
    assert (status["order_status"], status["side"], status["cum_fill"], status["size"]) == (
        "Filled",
        "B",
        "10.0",
        "0.0",
    )
    fill_price = float(status["average_price"])
    live = c.get(f"{API}/iserver/account/orders?force=true").json()
    assert live["snapshot"] is True
    item = live["orders"][0]
    assert (item["orderId"], item["status"], item["order_ref"], item["filledQuantity"]) == (
        order_id,
        "Filled",
        "buy-1",
        10.0,
    )
    assert item["avgPrice"] == status["average_price"] and isinstance(item["totalSize"], float)
    positions = c.get(f"{API}/portfolio/{ACCT}/positions/0").json()
    assert [(p["conid"], p["position"], p["avgCost"]) for p in positions] == [(AAPL, 10.0, fill_price)]
    assert isinstance(positions[0]["mktPrice"], float) and positions[0]["acctId"] == ACCT
    assert c.get(f"{API}/portfolio/{ACCT}/positions/1").json() == []
    ledger = c.get(f"{API}/portfolio/{ACCT}/ledger").json()
    assert set(ledger) == {"USD", "BASE"}
    assert ledger["USD"]["cashbalance"] == round(
        1_000_000 - 10 * fill_price - 1.0, 2
    )  # $1 minimum commission
    assert ledger["BASE"]["timestamp"] == int(IN_SESSION.timestamp())  # seconds, not ms
    summary = c.get(f"{API}/portfolio/{ACCT}/summary").json()
    assert summary["accountcode"]["value"] == ACCT
    net = summary["netliquidation"]
    assert set(net) == {"amount", "currency", "isNull", "timestamp", "value", "severity"}
    assert net["timestamp"] == int(IN_SESSION.timestamp() * 1000)
    trades = c.get(f"{API}/iserver/account/trades?days=2").json()
    assert [(t["side"], t["size"], t["order_ref"], t["conid"]) for t in trades] == [
        ("B", 10.0, "buy-1", AAPL)
    ]
    assert isinstance(trades[0]["price"], str) and isinstance(trades[0]["trade_time_r"], int)


def test_cancel_is_asynchronous(make_client: ClientFactory) -> None:
    c = make_client(primed=True, questions=())
    preflight_live_orders(c)
    order_id = int(place(c, {"orders": [order(orderType="LMT", price=1.0, tif="GTC")]})[0]["order_id"])
    assert c.get(f"{API}/iserver/account/order/status/{order_id}").json()["order_status"] == "Submitted"
    ack = c.delete(f"{API}/iserver/account/{ACCT}/order/{order_id}").json()
    assert ack == {"msg": "Request was submitted", "order_id": order_id, "conid": AAPL, "account": ACCT}
    assert c.get(f"{API}/iserver/account/order/status/{order_id}").json()["order_status"] == "Cancelled"
    assert c.delete(f"{API}/iserver/account/{ACCT}/order/{order_id}").status_code == 400


def test_market_hours_mode_waits_for_the_open(make_client: ClientFactory) -> None:
    c = make_client(now=WEEKEND, primed=True, questions=())
    accepted = place(c, {"orders": [order(tif="GTC")]})
    assert accepted[0]["order_status"] == "PreSubmitted"
    order_id = accepted[0]["order_id"]
    assert c.get(f"{API}/iserver/account/order/status/{order_id}").json()["order_status"] == "PreSubmitted"
    monday_open = WEEKEND.replace(day=6, hour=14, minute=31)
    c.post(f"{ADMIN}/clock", json={"now": monday_open.isoformat(), "keep_session": True})
    assert c.get(f"{API}/iserver/account/order/status/{order_id}").json()["order_status"] == "Filled"


def test_marketable_limit_fills_and_far_limit_works(make_client: ClientFactory) -> None:
    c = make_client(primed=True, questions=())
    buy_high = place(c, {"orders": [order(conid=SPY, orderType="LMT", price=100_000.0, quantity=1)]})[0]
    buy_low = place(c, {"orders": [order(conid=SPY, orderType="LMT", price=0.5, quantity=1)]})[0]
    book = {o["order_id"]: o for o in c.get(f"{ADMIN}/orders").json()["orders"]}
    assert book[int(buy_high["order_id"])]["status"] == "Filled"
    assert book[int(buy_low["order_id"])]["status"] == "Submitted"
    assert book[int(buy_high["order_id"])]["fills"][0]["price"] < 100_000


def test_whatif(client: TestClient) -> None:
    body = client.post(f"{ORDERS}/whatif", json={"orders": [order(quantity=5)]}).json()
    assert set(body) == {"amount", "equity", "initial", "maintenance", "position", "warn", "error"}
    assert body["amount"]["amount"].endswith("USD (5 Shares)") and body["position"]["after"] == "5"
    assert client.get(f"{ADMIN}/orders").json()["orders"] == []


def test_modify_working_order(make_client: ClientFactory) -> None:
    c = make_client(primed=True, questions=())
    order_id = place(c, {"orders": [order(orderType="LMT", price=1.0, tif="GTC")]})[0]["order_id"]
    changed = c.post(
        f"{API}/iserver/account/{ACCT}/order/{order_id}", json=order(orderType="LMT", price=2.0, tif="GTC")
    )
    assert changed.json() == [{"order_id": order_id, "order_status": "Submitted", "encrypt_message": "1"}]
    assert c.get(f"{API}/iserver/account/order/status/{order_id}").json()["limit_price"] == "2.00"
    bad = c.post(f"{API}/iserver/account/{ACCT}/order/{order_id}", json=order(side="SELL", price=2.0))
    assert bad.status_code == 400


def test_order_beyond_buying_power_is_inactive(make_client: ClientFactory) -> None:
    c = make_client(primed=True, questions=())
    accepted = place(c, {"orders": [order(conid=SPY, orderType="LMT", price=100.0, quantity=1_000_000)]})
    assert accepted[0]["order_status"] == "Inactive"
    assert (
        c.get(f"{API}/iserver/account/order/status/{accepted[0]['order_id']}").json()["order_status"]
        == "Inactive"
    )


def test_stop_order_is_held_until_elected(make_client: ClientFactory) -> None:
    c = make_client(primed=True, questions=(), fill_mode="immediate")
    held = place(c, {"orders": [order(orderType="STP", price=1_000_000.0, tif="GTC")]})[0]
    assert held["order_status"] == "PreSubmitted"
    assert (
        c.get(f"{API}/iserver/account/order/status/{held['order_id']}").json()["order_status"]
        == "PreSubmitted"
    )
    elected = place(c, {"orders": [order(orderType="STP", price=0.01, tif="GTC")]})[
        0
    ]  # buy stop below market
    assert (
        c.get(f"{API}/iserver/account/order/status/{elected['order_id']}").json()["order_status"] == "Filled"
    )
