"""Pure parsers for order placement, reply questions, live orders, order status, trades and cancels (§8)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, Literal

from include.ibkr.models import CancelAck, LiveOrder, OrderAck, OrderQuestion, OrderStatus, Trade
from include.ibkr.parsing.common import expect_dict, expect_list, malformed, parse_error, to_float, to_int, to_str

PLACE_ENDPOINT = "/iserver/account/{accountId}/orders"
_ORDER_ID_RE = re.compile(r"^\d+$")


def normalise_side(value: Any, endpoint: str) -> Literal["BUY", "SELL"] | None:
    """Map "B"/"S" (order status, trades) and "BUY"/"Buy" (live orders) -> "BUY"/"SELL" (§8.3, §8.4)."""
    text = str(value or "").strip().upper()
    if not text:
        return None
    if text[0] == "B":
        return "BUY"
    if text[0] == "S":  # also covers a short-sale "SS"/"SSHORT" spelling: still a sell
        return "SELL"
    raise malformed(endpoint, f"unknown order side {value!r}")


def parse_order_submission(payload: Any, endpoint: str = PLACE_ENDPOINT) -> OrderAck | OrderQuestion:
    """§8.1/§8.2: an accepted order (A), a question to confirm (B), or an error sent with HTTP 200."""
    if isinstance(payload, dict) and "error" not in payload:
        payload = [payload]  # some builds answer with a bare object instead of a one-element list
    items = expect_list(payload, endpoint)
    if not items or not isinstance(items[0], dict):
        raise malformed(endpoint, "empty order response", payload)
    # One order per request (§8.1); brackets would return one element per order, parent first.
    item = items[0]
    if "error" in item:
        raise parse_error(200, json.dumps(item), endpoint)  # §3.6: rejections can arrive as HTTP 200
    if "order_id" in item:
        order_id = str(item["order_id"]).strip()
        if not _ORDER_ID_RE.match(order_id):
            raise malformed(endpoint, f"order_id {item['order_id']!r} is not a digit string", item)
        return OrderAck(
            order_id=order_id,
            order_status=to_str(item.get("order_status")),
            coid=to_str(item.get("local_order_id")),
        )
    if "id" in item and "message" in item:
        messages = item["message"]
        ids = item.get("messageIds") or []
        return OrderQuestion(
            reply_id=str(item["id"]),
            messages=[str(m) for m in (messages if isinstance(messages, list) else [messages])],
            message_ids=[str(m) for m in ids] if isinstance(ids, list) else [str(ids)],
        )
    raise malformed(endpoint, "neither an order_id nor a reply question", payload)


def parse_live_orders(payload: Any, endpoint: str = "/iserver/account/orders") -> list[LiveOrder]:
    if isinstance(payload, dict):
        payload = expect_dict(payload, endpoint).get("orders") or []  # pre-flight may omit "orders"
    out: list[LiveOrder] = []
    for item in expect_list(payload, endpoint):
        if not isinstance(item, dict):
            raise malformed(endpoint, "live order is not an object", item)
        order_id = to_int(item.get("orderId"), "orderId", endpoint)
        if order_id is None:
            raise malformed(endpoint, "live order without orderId", item)
        f = lambda name, r=item: to_float(r.get(name), name, endpoint)  # noqa: E731
        out.append(LiveOrder(
            order_id=order_id, conid=to_int(item.get("conid"), "conid", endpoint),
            symbol=to_str(item.get("ticker")), side=normalise_side(item.get("side"), endpoint),
            status=to_str(item.get("status")),
            order_type=to_str(item.get("origOrderType")) or to_str(item.get("orderType")),
            tif=to_str(item.get("timeInForce")), total_size=f("totalSize"),
            filled_quantity=f("filledQuantity"), remaining_quantity=f("remainingQuantity"),
            price=f("price"), avg_price=f("avgPrice"), coid=to_str(item.get("order_ref")),
            account=to_str(item.get("account")) or to_str(item.get("acct")),
        ))  # fmt: skip
    return out


def parse_order_status(payload: Any, endpoint: str = "/iserver/account/order/status") -> OrderStatus:
    item = expect_dict(payload, endpoint)
    order_id = to_int(item.get("order_id"), "order_id", endpoint)
    if order_id is None:
        raise malformed(endpoint, "order status without order_id", item)
    f = lambda name: to_float(item.get(name), name, endpoint)  # noqa: E731
    return OrderStatus(
        order_id=order_id, conid=to_int(item.get("conid"), "conid", endpoint),
        symbol=to_str(item.get("symbol")), side=normalise_side(item.get("side"), endpoint),
        status=to_str(item.get("order_status")), order_type=to_str(item.get("order_type")),
        tif=to_str(item.get("tif")), total_size=f("total_size"), cum_fill=f("cum_fill"),
        remaining=f("size"), avg_price=f("average_price"), limit_price=f("limit_price"),
        stop_price=f("stop_price"), account=to_str(item.get("account")),
        coid=to_str(item.get("order_ref")),
    )  # fmt: skip


def _trade_time(item: dict[str, Any], endpoint: str) -> datetime | None:
    millis = to_float(item.get("trade_time_r"), "trade_time_r", endpoint)
    if millis is not None:
        return datetime.fromtimestamp(millis / 1000, tz=UTC)
    text = to_str(item.get("trade_time"))
    if text is None:
        return None
    try:  # "YYYYMMDD-hh:mm:ss"; its zone is UNCONFIRMED, read as UTC like startTime (§6.1)
        return datetime.strptime(text, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise malformed(endpoint, f"trade_time {text!r} is not YYYYMMDD-hh:mm:ss", item) from None


def parse_trades(payload: Any, endpoint: str = "/iserver/account/trades") -> list[Trade]:
    out: list[Trade] = []
    for item in expect_list(payload, endpoint):
        if not isinstance(item, dict):
            raise malformed(endpoint, "trade is not an object", item)
        size = to_float(item.get("size"), "size", endpoint)  # number in new builds, string in old (§8.9)
        price = to_float(item.get("price"), "price", endpoint)
        if item.get("execution_id") in (None, "") or size is None or price is None:
            raise malformed(endpoint, "trade without execution_id, size or price", item)
        out.append(Trade(
            execution_id=str(item["execution_id"]), symbol=to_str(item.get("symbol")),
            side=normalise_side(item.get("side"), endpoint), size=size, price=price,
            trade_time=_trade_time(item, endpoint), coid=to_str(item.get("order_ref")),
            conid=to_int(item.get("conid"), "conid", endpoint),
            commission=to_float(item.get("commission"), "commission", endpoint),
            account=to_str(item.get("account")),
        ))  # fmt: skip
    return out


def parse_cancel(payload: Any, endpoint: str = "/iserver/account/{accountId}/order") -> CancelAck:
    """§8.5: an acknowledgement only; the cancellation itself shows up later in live orders."""
    item = expect_dict(payload, endpoint)
    message = to_str(item.get("msg")) or to_str(item.get("message"))
    if message is None:
        raise malformed(endpoint, "cancel response without msg", item)
    return CancelAck(
        order_id=to_int(item.get("order_id"), "order_id", endpoint),
        message=message,
        conid=to_int(item.get("conid"), "conid", endpoint),
        account=to_str(item.get("account")),
    )
