"""Wire shapes of orders and executions: live orders (§8.3), order status (§8.4), what-if (§8.8) and
trades (§8.9)."""

from __future__ import annotations

from typing import Any

from sim.ibkr import formats
from sim.ibkr.orders import WORKING, Order
from sim.ibkr.portfolio import Execution, Portfolio

_TYPE_WORDS = {"LMT": "Limit", "MKT": "Market", "STP": "Stop", "STOP_LIMIT": "Stop Limit"}
_ORIG_TYPES = {"LMT": "LIMIT", "MKT": "MARKET", "STP": "STOP", "STOP_LIMIT": "STOP_LIMIT"}


def description(order: Order, with_contract: bool = False) -> str:
    """E.g. "Buy 1 Limit 457.00, GTC" (§8.3); stop limits show limit then stop."""
    words = [order.side.capitalize(), formats.qty_word(order.qty)]
    if with_contract:
        words.append(order.inst.symbol)
    words.append(_TYPE_WORDS[order.order_type])
    if order.price is not None:
        words.append(formats.price(order.price))
    if order.aux_price is not None:
        words.append(formats.price(order.aux_price))
    return f"{' '.join(words)}, {order.tif}"


def _fills(order: Order) -> str:
    return f"{formats.qty_word(order.filled)}/{formats.qty_word(order.qty)}"


def live_item(order: Order) -> dict[str, Any]:
    """§8.3: `orderId` is an INT here (a digit string on placement); quantities are floats, prices strings."""
    inst = order.inst
    item: dict[str, Any] = {
        "acct": order.account, "account": order.account, "conidex": str(inst.conid), "conid": inst.conid,
        "orderId": order.order_id, "cashCcy": "USD", "sizeAndFills": _fills(order),
        "orderDesc": description(order), "description1": inst.symbol, "ticker": inst.symbol,
        "secType": "STK", "listingExchange": inst.exchange, "remainingQuantity": float(order.remaining),
        "filledQuantity": float(order.filled), "totalSize": float(order.qty), "companyName": inst.name,
        "status": order.status, "order_ccp_status": order.status,
        "origOrderType": _ORIG_TYPES[order.order_type],
        "supportsTaxOpt": "1", "lastExecutionTime": formats.yymmddhhmmss(order.updated_at),
        "orderType": _TYPE_WORDS[order.order_type], "bgColor": "#FFFFFF", "fgColor": "#0000CC",
        "order_ref": order.coid, "timeInForce": order.tif,
        "lastExecutionTime_r": formats.epoch_ms(order.updated_at), "side": order.side,
        "outsideRTH": order.outside_rth,
    }
    if order.price is not None:
        item["price"] = formats.price(order.price)
    if order.aux_price is not None:
        item["auxPrice"] = formats.price(order.aux_price)
    if order.filled:
        item["avgPrice"] = formats.price(order.avg_price)
    return item


def status_item(order: Order) -> dict[str, Any]:
    """§8.4: `order_id`/`conid` ints, `side` "B"/"S", sizes and prices as strings."""
    inst = order.inst
    item: dict[str, Any] = {
        "sub_type": None, "request_id": str(order.order_id % 100_000), "server_id": "0",
        "order_id": order.order_id, "conidex": str(inst.conid), "conid": inst.conid, "symbol": inst.symbol,
        "side": "B" if order.side == "BUY" else "S", "contract_description_1": inst.symbol,
        "listing_exchange": inst.exchange, "option_acct": "c", "company_name": inst.name,
        "size": formats.qty(order.remaining), "total_size": formats.qty(order.qty), "currency": "USD",
        "account": order.account, "order_type": _ORIG_TYPES[order.order_type],
        "cum_fill": formats.qty(order.filled), "order_status": order.status, "order_ccp_status": "0",
        "order_status_description": _status_text(order.status), "tif": order.tif, "fg_color": "#FFFFFF",
        "bg_color": "#0000CC", "order_not_editable": order.status not in WORKING,
        "editable_fields": "\x1e", "cannot_cancel_order": order.status not in WORKING,
        "deactivate_order": False, "sec_type": "STK", "available_chart_periods": "#R|1",
        "order_description": description(order), "order_description_with_contract": description(order, True),
        "alert_active": 1, "child_order_type": "3", "order_clearing_account": order.account,
        "size_and_fills": _fills(order), "exit_strategy_display_price": formats.price(order.price or 0.0),
        "exit_strategy_chart_description": description(order), "exit_strategy_tool_availability": "1",
        "allowed_duplicate_opposite": True, "order_time": formats.yymmddhhmmss(order.placed_at),
        "outside_rth": order.outside_rth, "use_price_mgmt_algo": False,
    }
    if order.order_type in ("LMT", "STOP_LIMIT"):
        item["limit_price"] = formats.price(order.price or 0.0)
    if order.order_type in ("STP", "STOP_LIMIT"):
        stop = order.aux_price if order.order_type == "STOP_LIMIT" else order.price
        item["stop_price"] = formats.price(stop or 0.0)
    if order.filled:
        item["average_price"] = formats.price(order.avg_price)
    return item


def _status_text(status: str) -> str:
    return {"Filled": "Order Filled", "Cancelled": "Order Cancelled", "Inactive": "Order Inactive"}.get(
        status, "Order Submitted"
    )


def trade_item(ex: Execution, account: str) -> dict[str, Any]:
    """§8.9 (newer spec types: `size` a number, `price` a string, `conid` an int)."""
    inst = ex.inst
    venue = "ISLAND" if inst.exchange == "NASDAQ" else inst.exchange
    verb = "Bot" if ex.side == "BUY" else "Sold"
    return {
        "execution_id": ex.execution_id, "symbol": inst.symbol, "supports_tax_opt": "1",
        "side": "B" if ex.side == "BUY" else "S",
        "order_description": f"{verb} {formats.qty_word(ex.qty)} @ {formats.price(ex.price)} on {venue}",
        "trade_time": formats.ib_time(ex.at), "trade_time_r": formats.epoch_ms(ex.at), "size": ex.qty,
        "price": formats.price(ex.price), "order_ref": ex.order_ref, "submitter": "simuser",
        "exchange": venue, "commission": formats.price(ex.commission),
        "net_amount": round(ex.qty * ex.price, 2), "account": account, "accountCode": account,
        "company_name": inst.name, "contract_description_1": inst.symbol, "sec_type": "STK",
        "listing_exchange": inst.exchange, "conid": inst.conid, "conidEx": str(inst.conid),
        "clearing_id": "IB", "clearing_name": "IB", "liquidation_trade": "0", "is_event_trading": "0",
    }


def whatif(order_req: dict[str, Any], market: float, portfolio: Portfolio, equity: float, fee: float) -> dict:
    """§8.8 preview; all values are formatted strings."""
    qty, price = order_req["qty"], order_req["price"] or market
    amount = qty * price
    signed = qty if order_req["side"] == "BUY" else -qty
    held = portfolio.positions.get(order_req["inst"].conid)
    current = held.qty if held else 0.0
    margin = 0.25 * amount

    def triple(before: float, change: float) -> dict[str, str]:
        return {"current": formats.money(before), "change": formats.money(change),
                "after": formats.money(before + change)}

    return {
        "amount": {"amount": f"{formats.money(amount)} USD ({formats.qty_word(qty)} Shares)",
                   "commission": f"{formats.money(fee)} USD", "total": f"{formats.money(amount + fee)} USD"},
        "equity": triple(equity, -fee),
        "initial": triple(0.0, margin),
        "maintenance": triple(0.0, margin),
        "position": {"current": formats.qty_word(current), "change": formats.qty_word(signed),
                     "after": formats.qty_word(current + signed)},
        "warn": None,
        "error": None,
    }
