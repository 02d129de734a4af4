"""Pure parsing tests over the payload examples in the IBKR CP API reference, plus malformed cases."""

from __future__ import annotations

import json
import math
import pickle
import random
from datetime import UTC, date, datetime

import pytest

from include.ibkr import errors as E
from include.ibkr import parsing
from include.ibkr.models import Bar, OrderAck, OrderQuestion, OrderRequest
from include.ibkr.parsing import account as parsing_account
from include.ibkr.parsing import (
    is_preflight,
    parse_error,
    parse_history,
    parse_history_body,
    parse_price,
    parse_quantity_suffix,
    parse_snapshot,
)
from include.ibkr.parsing import orders as parsing_orders
from include.ibkr.parsing.account import (
    parse_account_summary,
    parse_accounts,
    parse_auth_status,
    parse_ledger,
    parse_positions,
    parse_secdef_search,
    parse_tickle,
    parse_trsrv_stocks,
)
from include.ibkr.parsing.orders import (
    parse_cancel,
    parse_live_orders,
    parse_order_status,
    parse_order_submission,
    parse_trades,
)

# ---- verbatim examples from /work/shared/docs/ibkr-cp-api.md ("{...}" placeholders replaced by {})
AUTH_STATUS = """{"MAC":"F4:03:43:CD:BD:C0","authenticated":true,"competing":false,"connected":true,"fail":"",
 "hardware_info":"1c4558e8|F4:03:43:CD:BD:C0","message":"",
 "serverInfo":{"serverName":"JifC11113","serverVersion":"Build 10.25.0m, Nov 17, 2023 11:29:27 AM"}}"""
AUTH_NOT_READY = """{"authenticated":false,"competing":false,"connected":false,"MAC":"..."}"""
TICKLE = """{"session":"ce109cbeb462a76dc3f6f4182c830cc1","ssoExpires":585695,"collission":false,"userId":99996016,
 "hmds":{"error":"no bridge"},
 "iserver":{"authStatus":{"authenticated":true,"competing":false,"connected":true,"message":"",
            "MAC":"F4:03:43:CD:BD:C0","serverInfo":{"serverName":"JifC11113","serverVersion":"Build 10.25.0m, ..."}}}}"""  # noqa: E501
SECDEF = """[{"conid":"265598","companyHeader":"APPLE INC - NASDAQ","companyName":"APPLE INC","symbol":"AAPL",
  "description":"NASDAQ","restricted":null,
  "sections":[{"secType":"STK"},{"secType":"OPT","months":"OCT24;NOV24;...","exchange":"SMART;AMEX;..."}]}]"""
SNAPSHOT_PREFLIGHT = """[{"conid":265598,"conidEx":"265598"},{"conid":8314,"conidEx":"8314"}]"""
SNAPSHOT = """[{"31":"168.42","6119":"q1","6509":"RpB","7059":"100","84":"168.41","85":"600","86":"168.42","88":"1,300",
  "_updated":1712596911593,"conid":265598,"conidEx":"265598","server_id":"q1"}]"""
HISTORY = """{"serverId":"195436","symbol":"AAPL","text":"APPLE INC","priceFactor":100,"startTime":"20231031-00:00:00",
 "high":"19293/6942998.04/1440","low":"17012/6942998.04/1440","timePeriod":"1m","barLength":2678400,
 "mdAvailability":"S","mktDataDelay":0,"outsideRth":false,"volumeFactor":1,"priceDisplayRule":1,
 "priceDisplayValue":"2","negativeCapable":false,"messageVersion":2,"chartAnnotations":"x/D 0.24/1440;",
 "data":[{"o":171.05,"c":189.37,"h":192.93,"l":170.12,"v":6942998.04,"t":1698796800000}],
 "points":0,"travelTime":3}"""
ACCOUNTS = """{"accounts":["DU123456"],"acctProps":{"DU123456":{"hasChildAccounts":false,"supportsCashQty":true,
  "noFXConv":false,"isProp":false,"supportsFractions":true,"allowCustomerTime":false}},
 "aliases":{"DU123456":"DU123456"},"allowFeatures":{},"chartPeriods":{},"groups":[],"profiles":[],
 "selectedAccount":"DU123456","serverInfo":{"serverName":"...","serverVersion":"..."},
 "sessionId":"...","isFt":false,"isPaper":true}"""
POSITION = """{"acctId":"DU123456","conid":756733,"contractDesc":"SPY","assetClass":"STK","position":100.0,
 "mktPrice":454.44000245,"mktValue":45444.0,"currency":"USD","avgCost":437.43,"avgPrice":437.43,
 "realizedPnl":0.0,"unrealizedPnl":1701.0,"exchs":null,"expiry":null,"putOrCall":null,"multiplier":0.0,
 "strike":"0","exerciseStyle":null,"conExchMap":[],"undConid":0,"ticker":"SPY","name":"SPDR S&P 500 ETF TRUST",
 "fullName":"SPY","listingExchange":"ARCA","countryCode":"US","type":"ETF","isUS":true,"hasOptions":true,
 "incrementRules":[{"increment":0.01,"lowerEdge":0.0}],"displayRule":{},"sector":null,"group":null,
 "allExchanges":"AMEX,NYSE,...","pageSize":100,"time":30,"model":""}"""
ORDER_ACCEPTED = """[{"order_id":"1234567890","order_status":"Submitted","encrypt_message":"1"}]"""
ORDER_QUESTION = r"""[{"id":"07a13a5a-4a48-44a5-bb25-5ab37b79186c",
  "message":["The following order \"BUY 100 AAPL NASDAQ.NMS @ 165.0\" price exceeds \nthe Percentage constraint of 3%.\nAre you sure you want to submit this order?"],
  "isSuppressed":false,"messageIds":["o163"]}]"""  # noqa: E501
CANCEL = """{"msg":"Request was submitted","order_id":987654,"conid":265598,"account":"DU123456"}"""
DUPLICATE = """{"error":"Order couldn't be submitted: Local order ID=abc-123 is already registered."}"""
NOT_CONFIRMED = """{"error":"order not confirmed","statusCode":400}"""

# ---- built from the field lists in the reference (no literal example there)
TRSRV = {
    "AAPL": [
        {"name": "LS 1X AAPL", "chineseName": "&#x82f9;", "assetClass": "STK",
         "contracts": [{"conid": 493546048, "exchange": "LSEETF", "isUS": False}]},
        {"name": "APPLE INC", "chineseName": "&#x82f9;&#x679c;", "assetClass": "STK",
         "contracts": [{"conid": 38708077, "exchange": "MEXI", "isUS": False},
                       {"conid": 265598, "exchange": "NASDAQ", "isUS": True},
                       {"conid": 273982664, "exchange": "EBS", "isUS": False}]},
    ]
}  # fmt: skip
SUMMARY = {
    "accountcode": {"amount": 0.0, "currency": None, "isNull": False, "timestamp": 1702582321000,
                    "value": "DU123456", "severity": 0},
    "netliquidation": {"amount": 1000123.45, "currency": "USD", "isNull": False, "timestamp": 1702582321000,
                       "value": None, "severity": 0},
    "totalcashvalue": {"amount": 954679.45, "currency": "USD", "isNull": False, "timestamp": 1},
    "buyingpower": {"amount": 4000000.0, "currency": "USD", "isNull": False, "timestamp": 1},
    "grosspositionvalue": {"amount": 45444.0, "currency": "USD", "isNull": False, "timestamp": 1},
    "sma": {"amount": 0.0, "currency": "USD", "isNull": True, "timestamp": 1, "value": None},
}  # fmt: skip
LEDGER = {
    "USD": {"cashbalance": 954679.45, "settledcash": 954679.45, "netliquidationvalue": 1000123.45,
            "stockmarketvalue": 45444.0, "unrealizedpnl": 1701.0, "realizedpnl": 0.0, "currency": "USD",
            "key": "LedgerList", "timestamp": 1702582321, "endofbundle": 1},
    "BASE": {"cashbalance": 954679.45, "settledcash": 954679.45, "netliquidationvalue": 1000123.45,
             "stockmarketvalue": 45444.0, "unrealizedpnl": 1701.0, "realizedpnl": 0.0, "currency": "BASE",
             "key": "LedgerList", "timestamp": 1702582321},
}  # fmt: skip
LIVE_ORDERS = {
    "orders": [{"acct": "DU123456", "account": "DU123456", "conid": 756733, "conidex": "756733",
                "orderId": 1234567890, "sizeAndFills": "0/1", "orderDesc": "Buy 1 Limit 457.00, GTC",
                "ticker": "SPY", "secType": "STK", "remainingQuantity": 1.0, "filledQuantity": 0.0,
                "totalSize": 1.0, "status": "PreSubmitted", "origOrderType": "LIMIT", "orderType": "Limit",
                "price": "457.00", "timeInForce": "GTC", "side": "BUY", "order_ref": "run1-SPY-buy"}],
    "snapshot": True,
}  # fmt: skip
ORDER_STATUS = {
    "order_id": 1234567890, "conid": 756733, "conidex": "756733", "symbol": "SPY", "side": "S",
    "order_type": "LIMIT", "limit_price": "457.00", "size": "0.0", "total_size": "1.0", "cum_fill": "1.0",
    "average_price": "456.98", "order_status": "Filled", "tif": "GTC", "account": "DU123456",
}  # fmt: skip
TRADES = [
    {"execution_id": "0000e0d5.6576fd38.01.01", "symbol": "SPY", "side": "B",
     "trade_time": "20231211-18:00:49", "trade_time_r": 1702317649000, "size": 1, "price": "457.01",
     "order_ref": "run1-SPY-buy",
     "commission": "1.0", "account": "DU123456", "conid": "756733"},
]  # fmt: skip


def load(text: str) -> object:
    return json.loads(text)


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("status", "body", "endpoint", "expected"),
    [
        (401, "", "/iserver/accounts", E.NotAuthenticatedError),
        (401, '{"error":"whatever"}', "/tickle", E.NotAuthenticatedError),
        (400, '{"error":"Bad Request: no bridge","statusCode":400}', "/iserver/accounts", E.NoBridgeError),
        (400, '{"error":"Init session first","statusCode":400}', "/iserver/accounts", E.NoBridgeError),
        (500, '{"error":"Please query /accounts first"}', "/iserver/marketdata/snapshot", E.NotPrimedError),
        (200, '{"error":"No data."}', "/iserver/marketdata/history", E.NoDataError),
        (400, DUPLICATE, "/iserver/account/DU123456/orders", E.DuplicateOrderError),
        (400, NOT_CONFIRMED, "/iserver/reply/abc", E.OrderNotConfirmedError),
        (429, '{"error":"Too many requests"}', "/iserver/marketdata/history", E.RateLimitedError),
        (503, "Service Unavailable", "/iserver/accounts", E.GatewayServerError),
        (
            400,
            '{"error":"No trading permissions."}',
            "/iserver/account/DU123456/orders",
            E.OrderRejectedError,
        ),
        (400, '{"error":"invalid conid"}', "/iserver/marketdata/snapshot", E.BadRequestError),
        (404, "Access Denied", "/tickle", E.BadRequestError),
    ],
)
def test_parse_error_maps_status_and_text(status: int, body: str, endpoint: str, expected: type) -> None:
    err = parse_error(status, body, endpoint)
    assert type(err) is expected
    shown = E.mask_account_ids(endpoint)  # the account id in a path is masked (DU…456)
    assert err.status_code == status and err.endpoint == shown
    assert shown in str(err) and "DU123456" not in str(err)


def test_duplicate_order_error_carries_coid_and_advice() -> None:
    err = parse_error(400, DUPLICATE, "/iserver/account/DU123456/orders")
    assert isinstance(err, E.DuplicateOrderError) and err.coid == "abc-123"
    assert "check live orders" in str(err)


def test_error_body_truncated_and_pickles() -> None:
    err = parse_error(503, "x" * 2000, "/iserver/accounts")
    assert err.body is not None and len(err.body) < 600
    clone = pickle.loads(pickle.dumps(E.InvalidBarError("AAPL", date(2024, 1, 2), "high < low")))
    assert isinstance(clone, E.InvalidBarError) and clone.symbol == "AAPL" and "2024-01-02" in str(clone)


# ------------------------------------------------------------------ session and contracts
def test_auth_status_real_and_not_ready() -> None:
    status = parse_auth_status(load(AUTH_STATUS))
    assert status.healthy and status.server_name == "JifC11113"
    not_ready = parse_auth_status(load(AUTH_NOT_READY))
    assert not not_ready.healthy and not_ready.server_name is None


def test_tickle_reads_misspelt_collission() -> None:
    tickle = parse_tickle(load(TICKLE))
    assert tickle.collision is False and tickle.sso_expires_ms == 585695 and tickle.user_id == 99996016
    assert tickle.auth_status is not None and tickle.auth_status.healthy


def test_accounts() -> None:
    accounts = parse_accounts(load(ACCOUNTS))
    assert accounts.accounts == ["DU123456"] and accounts.selected_account == "DU123456" and accounts.is_paper


def test_secdef_string_conid_and_us_preference() -> None:
    contract = parse_secdef_search(load(SECDEF), "AAPL")
    assert contract.conid == 265598 and contract.exchange == "NASDAQ" and contract.company_name == "APPLE INC"
    hits = [
        {"conid": "1", "symbol": "AAPL", "description": "MEXI", "sections": [{"secType": "STK"}]},
        {"conid": "2", "symbol": "AAPLX", "description": "NASDAQ", "sections": [{"secType": "STK"}]},
        {"conid": "3", "symbol": "AAPL", "description": "NASDAQ", "sections": [{"secType": "OPT"}]},
        *load(SECDEF),
    ]
    assert parse_secdef_search(hits, "AAPL").conid == 265598
    with pytest.raises(E.UnknownSymbolError, match="ZZZZ"):
        parse_secdef_search([], "ZZZZ")


def test_trsrv_stocks_filters_is_us() -> None:
    contract = parse_trsrv_stocks(TRSRV, "AAPL")
    assert contract.conid == 265598 and contract.exchange == "NASDAQ" and contract.company_name == "APPLE INC"
    with pytest.raises(E.UnknownSymbolError):
        parse_trsrv_stocks({"AAPL": TRSRV["AAPL"][:1]}, "AAPL")


# ------------------------------------------------------------------ snapshot
@pytest.mark.parametrize(
    ("raw", "expected"),
    [("168.42", (168.42, "last")), ("C168.42", (168.42, "close")), ("H12.5", (12.5, "halted")),
     ("1,300.5", (1300.5, "last")), ("", (None, None)), (None, (None, None)), (3.5, (3.5, "last"))],
)  # fmt: skip
def test_parse_price(raw: object, expected: tuple[float | None, str | None]) -> None:
    assert parse_price(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12.3M", 12_300_000.0),
        ("1.2K", 1_200.0),
        ("1,300", 1_300.0),
        ("2B", 2e9),
        (500, 500.0),
        ("88.5", 88.5),
    ],
)
def test_parse_quantity_suffix(raw: object, expected: float) -> None:
    assert parse_quantity_suffix(raw) == expected


def test_snapshot_preflight_is_skipped() -> None:
    payload = load(SNAPSHOT_PREFLIGHT)
    assert all(is_preflight(item) for item in payload)  # type: ignore[union-attr]
    assert parse_snapshot(payload, {265598: "AAPL", 8314: "IBM"}) == []


def test_snapshot_populated_official_example() -> None:
    (snap,) = parse_snapshot(load(SNAPSHOT), {265598: "AAPL"})
    assert snap.symbol == "AAPL" and snap.last == 168.42 and snap.last_price_type == "last"
    assert snap.bid == 168.41 and snap.ask == 168.42
    assert snap.ask_size == 60_000 and snap.bid_size == 130_000  # 85/88 in round lots of 100
    assert snap.last_size == 100 and snap.md_availability == "RpB" and snap.server_id == "q1"
    assert snap.captured_at == datetime(2024, 4, 8, 17, 21, 51, 593000, tzinfo=UTC)
    assert snap.quote_at == snap.captured_at  # "_updated": when the gateway last updated the quote


@pytest.mark.parametrize("updated", ["absent", None, "1712596911593", True, math.nan, -5, 0, 1e20])
def test_snapshot_without_a_valid_update_time_has_no_quote_time(updated: object) -> None:
    """A quote of unknown age gets quote_at None; captured_at (the storage key) falls back to the receive time."""
    item = {"conid": 265598, "31": "168.42", "84": "168.41"}
    if updated != "absent":
        item["_updated"] = updated
    received = datetime(2025, 1, 10, 15, 0, 7, tzinfo=UTC)
    (snap,) = parse_snapshot([item], {265598: "AAPL"}, received_at=received)
    assert (snap.quote_at, snap.captured_at, snap.last) == (None, received, 168.42)
    (snap,) = parse_snapshot([item], {265598: "AAPL"})
    assert snap.quote_at is None and snap.captured_at.tzinfo is UTC  # now(), as before


def test_snapshot_update_time_wins_over_the_receive_time() -> None:
    item = {"conid": 265598, "_updated": 1736521200000, "31": "168.42"}  # 2025-01-10T15:00:00Z
    (snap,) = parse_snapshot([item], {265598: "AAPL"}, received_at=datetime(2025, 1, 10, 15, 4, tzinfo=UTC))
    assert snap.quote_at == snap.captured_at == datetime(2025, 1, 10, 15, tzinfo=UTC)


def test_snapshot_close_prefix_and_volume_forms() -> None:
    item = {"conid": 265598, "_updated": 1712596911593, "31": "C168.42", "87": "12.3M", "83": "-1.25%",
            "70": "170.10", "71": "167.00", "7295": "169.00", "7741": "169.10", "82": "-0.68"}  # fmt: skip
    (snap,) = parse_snapshot([item], {265598: "AAPL"})
    assert snap.last_price_type == "close" and snap.volume == 12_300_000 and snap.change_pct == -1.25
    assert (snap.day_high, snap.day_low, snap.open, snap.prior_close) == (170.10, 167.0, 169.0, 169.10)
    (snap2,) = parse_snapshot([{**item, "31": "H168.42", "7762": "12,345,678"}], {265598: "AAPL"})
    assert snap2.last_price_type == "halted" and snap2.volume == 12_345_678  # 7762 beats 87


def test_snapshot_non_numeric_price_is_malformed() -> None:
    with pytest.raises(E.MalformedResponseError, match="snapshot"):
        parse_snapshot([{"conid": 1, "_updated": 1, "31": "abc"}], {1: "AAPL"})


# ------------------------------------------------------------------ history
def test_history_real_example_volume_in_lots() -> None:
    bars = parse_history(load(HISTORY), "AAPL", 265598)
    assert bars == [Bar("AAPL", 265598, date(2023, 11, 1), 171.05, 192.93, 170.12, 189.37, 694_299_804.0)]


def _hist(**overrides: object) -> dict[str, object]:
    good = {"o": 10.0, "h": 11.0, "l": 9.0, "c": 10.5, "v": 1000.0, "t": 1704153600000}  # 2024-01-02
    return {
        "data": [{"o": 9.0, "h": 10.0, "l": 8.0, "c": 9.5, "v": 5, "t": 1704067200000}, {**good, **overrides}]
    }


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"c": "abc"}, "not a number"),
        ({"o": None}, "not a number"),
        ({"v": True}, "not a number"),
        ({"h": math.nan}, "not finite"),
        ({"h": math.inf}, "not finite"),
        ({"l": -1.0, "o": -0.5}, "non-positive"),
        ({"h": 8.0}, "high 8.0 < low 9.0"),
        ({"o": 11.5}, "outside the high-low range"),
        ({"c": 8.5}, "outside the high-low range"),
        ({"v": -1.0}, "negative volume"),
        ({"h": 10**400}, "sanity ceiling"),
        ({"t": 1704067200000 + 3_600_000}, "duplicate date"),
    ],
)
def test_history_rejects_bad_bar_naming_symbol_and_date(overrides: dict[str, object], reason: str) -> None:
    with pytest.raises(E.InvalidBarError) as info:
        parse_history(_hist(**overrides), "TSLA", 76792991)
    err = info.value
    assert err.symbol == "TSLA" and reason in err.reason
    expected_day = date(2024, 1, 1) if reason == "duplicate date" else date(2024, 1, 2)
    assert err.session_date == expected_day
    assert "TSLA" in str(err) and expected_day.isoformat() in str(err)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [({"c": "abc"}, "not a number"), ({"v": True}, "not a number"), ({"h": math.nan}, "not finite"),
     ({"h": math.inf}, "not finite"), ({"l": -1.0, "o": -0.5}, "non-positive"), ({"h": 8.0}, "high 8.0 < low 9.0"),
     ({"c": 8.5}, "outside the high-low range"), ({"v": -1.0}, "negative volume"),
     ({"h": 10**400}, "sanity ceiling"), ({"t": 1704067200000 + 3_600_000}, "duplicate date")],
)
def test_history_body_fast_path_rejects_like_parse_history(overrides: dict[str, object], reason: str) -> None:
    with pytest.raises(E.InvalidBarError) as info:
        parse_history_body(json.dumps(_hist(**overrides)).encode(), "TSLA", 76792991)
    expected_day = date(2024, 1, 1) if reason == "duplicate date" else date(2024, 1, 2)
    assert reason in info.value.reason and info.value.session_date == expected_day


def test_history_body_columns_equal_parse_history() -> None:
    payload = load(HISTORY)
    rng = random.Random(7)
    payload["data"] += [{"o": p, "h": p * 1.25, "l": p * 0.75, "c": p, "v": rng.randint(0, 10**7) / 100,
                         "t": 1_699_920_000_000 + i * 86_400_000 + rng.randint(0, 80_000_000)}
                        for i in range(1, 300) for p in [rng.uniform(0.01, 5000)]]
    payload["data"].append({"o": 10, "h": 11, "l": 9, "c": 10, "v": 3, "t": 1_600_000_000_000.0})  # ints, float t
    body = json.dumps(payload).encode()
    for mult in (100.0, 1.0):
        cols = parse_history_body(body, "AAPL", 265598, volume_multiplier=mult)
        assert cols.to_bars() == parse_history(payload, "AAPL", 265598, volume_multiplier=mult)
    with pytest.raises(E.NoDataError):
        parse_history_body(b'{"error":"No data."}', "TSLA", 1)
    with pytest.raises(E.MalformedResponseError):
        parse_history_body(b"not json", "TSLA", 1)
    assert len(parse_history_body(b'{"data":[]}', "TSLA", 1)) == 0


def test_history_bad_timestamp_and_shapes() -> None:
    with pytest.raises(E.InvalidBarError, match="timestamp"):
        parse_history(_hist(t="2024-01-02"), "TSLA", 1)
    with pytest.raises(E.MalformedResponseError, match="no 'data' list"):
        parse_history({"symbol": "TSLA"}, "TSLA", 1)
    with pytest.raises(E.MalformedResponseError, match="no 'data' list"):
        parse_history({"data": {"o": 1}}, "TSLA", 1)
    with pytest.raises(E.MalformedResponseError):
        parse_history([1, 2], "TSLA", 1)
    with pytest.raises(E.NoDataError):
        parse_history({"error": "No data."}, "TSLA", 1)
    assert parse_history({"data": []}, "TSLA", 1) == []


def test_history_int_prices_become_floats_and_multiplier_one_keeps_volume() -> None:
    payload = {"data": [{"o": 10, "h": 11, "l": 9, "c": 10, "v": 2.5, "t": 1704153600000}]}
    (bar,) = parse_history(payload, "X", 1, volume_multiplier=1.0)
    assert bar.open == 10.0 and type(bar.open) is float and bar.volume == 2.5


# ------------------------------------------------------------------ portfolio
def test_positions_summary_ledger() -> None:
    (pos,) = parse_positions([load(POSITION)])
    assert (pos.symbol, pos.conid, pos.quantity, pos.market_value) == ("SPY", 756733, 100.0, 45444.0)
    summary = parse_account_summary(SUMMARY)
    assert summary.account_id == "DU123456" and summary.net_liquidation == 1000123.45
    assert summary.total_cash == 954679.45 and summary.buying_power == 4e6 and summary.get("sma") is None
    assert summary.gross_position_value == 45444.0
    entries = {e.currency: e for e in parse_ledger(LEDGER)}
    assert entries["BASE"].timestamp == datetime(2023, 12, 14, 19, 32, 1, tzinfo=UTC)  # seconds, not ms
    assert entries["USD"].settled_cash == 954679.45
    with pytest.raises(E.MalformedResponseError, match="epoch seconds"):
        parse_ledger({"USD": {**LEDGER["USD"], "timestamp": 1702582321000 * 1000}})


# ------------------------------------------------------------------ orders
def test_order_accepted_question_and_dict_form() -> None:
    ack = parse_order_submission(load(ORDER_ACCEPTED))
    assert ack == OrderAck(order_id="1234567890", order_status="Submitted")
    question = parse_order_submission(load(ORDER_QUESTION))
    assert isinstance(question, OrderQuestion) and question.message_ids == ["o163"]
    assert (
        question.reply_id == "07a13a5a-4a48-44a5-bb25-5ab37b79186c" and "Percentage" in question.messages[0]
    )
    assert isinstance(parse_order_submission(load(ORDER_ACCEPTED)[0]), OrderAck)  # type: ignore[index]
    with pytest.raises(E.MalformedResponseError):
        parse_order_submission([{"order_id": "12x"}])


def test_order_errors_on_http_200() -> None:
    with pytest.raises(E.DuplicateOrderError) as info:
        parse_order_submission(load(DUPLICATE))
    assert info.value.coid == "abc-123"
    with pytest.raises(E.OrderNotConfirmedError):
        parse_order_submission(load(NOT_CONFIRMED), "/iserver/reply/x")
    with pytest.raises(E.OrderRejectedError, match="No trading permissions"):
        parse_order_submission([{"error": "No trading permissions."}])


def test_live_orders_status_trades_cancel() -> None:
    (live,) = parse_live_orders(LIVE_ORDERS)
    assert live.order_id == 1234567890 and live.price == 457.0 and live.coid == "run1-SPY-buy"
    assert live.side == "BUY" and live.status == "PreSubmitted" and live.remaining_quantity == 1.0
    assert parse_live_orders({"snapshot": False}) == [] and len(parse_live_orders(LIVE_ORDERS["orders"])) == 1
    status = parse_order_status(ORDER_STATUS)
    assert status.side == "SELL" and status.cum_fill == 1.0 and status.avg_price == 456.98
    assert status.limit_price == 457.0 and status.remaining == 0.0
    assert parse_order_status({**ORDER_STATUS, "side": "B"}).side == "BUY"
    (trade,) = parse_trades(TRADES)
    assert trade.side == "BUY" and trade.conid == 756733 and trade.price == 457.01 and trade.commission == 1.0
    assert trade.trade_time == datetime(2023, 12, 11, 18, 0, 49, tzinfo=UTC) and trade.coid == "run1-SPY-buy"
    cancel = parse_cancel(load(CANCEL))
    assert cancel.order_id == 987654 and cancel.message == "Request was submitted"


def test_invalid_json_types_are_malformed() -> None:
    for fn, payload in [
        (parse_auth_status, []), (parse_accounts, {"accounts": "DU1"}), (parse_live_orders, "x"),
        (parse_order_status, {"order_id": None}),
        (parse_trades, [{"execution_id": "1", "size": "a", "price": 1}]),
        (parse_positions, [{"conid": "x", "position": 1}]), (parse_snapshot, {"conid": 1}),
    ]:  # fmt: skip
        with pytest.raises(E.MalformedResponseError):
            fn(payload, {}) if fn is parse_snapshot else fn(payload)  # type: ignore[operator]


def test_every_parser_is_reachable_from_parsing() -> None:
    assert parsing.parse_live_orders is parsing_orders.parse_live_orders
    assert parsing.parse_secdef_search is parsing_account.parse_secdef_search
    with pytest.raises(AttributeError):
        parsing.does_not_exist  # noqa: B018


def test_order_request_payload_and_validation() -> None:
    order = OrderRequest(conid=265598, side="BUY", quantity=10, order_type="LMT", price=165.0, coid="c1")
    assert order.to_payload() == {
        "conid": 265598, "orderType": "LMT", "side": "BUY", "tif": "DAY", "quantity": 10.0, "price": 165.0,
        "cOID": "c1", "outsideRTH": False,
    }  # fmt: skip
    for bad in (
        {"order_type": "LMT"}, {"order_type": "MKT", "price": 1.0},
        {"order_type": "STOP_LIMIT", "price": 1.0},
        {"order_type": "MKT", "quantity": 0}, {"order_type": "LMT", "price": math.nan},
    ):  # fmt: skip
        with pytest.raises(ValueError):
            OrderRequest(**{"conid": 1, "side": "SELL", "quantity": 1, **bad})  # type: ignore[arg-type]
