"""Order book engine: validation, cOID registry, reply-message chains, lazy fills and cancels (§8)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sim.ibkr import questions
from sim.ibkr.instruments import Instrument, InstrumentRegistry
from sim.ibkr.portfolio import Execution, Portfolio

ORDER_TYPES = {"LMT": "LMT", "MKT": "MKT", "STP": "STP", "STOP_LIMIT": "STOP_LIMIT", "STP LMT": "STOP_LIMIT"}
TIFS = ("GTC", "DAY", "IOC", "OPG")
WORKING = ("PendingSubmit", "PreSubmitted", "Submitted", "PendingCancel")
COID_WINDOW = timedelta(hours=24)  # §8.6: cOID unique within 24 h


class OrderError(ValueError):
    """Rejected request: 400 `{"error": str(exc)}`."""


@dataclass
class Order:
    order_id: int
    account: str
    inst: Instrument
    side: str  # BUY / SELL
    order_type: str  # LMT / MKT / STP / STOP_LIMIT
    qty: float
    price: float | None  # limit price; stop price for STP
    aux_price: float | None  # stop price of STOP_LIMIT
    tif: str
    outside_rth: bool
    coid: str | None
    placed_at: datetime
    updated_at: datetime
    status: str = "PendingSubmit"
    filled: float = 0.0
    avg_price: float = 0.0
    cancel_requested: bool = False
    triggered: bool = False
    expires_ms: int | None = None  # DAY orders: the close of their session
    fills: list[Execution] = field(default_factory=list)

    @property
    def remaining(self) -> float:
        return self.qty - self.filled


@dataclass
class PendingReply:
    orders: list[dict[str, Any]]  # validated requests, submitted once every question is confirmed
    remaining: list[str]  # message ids still to ask
    coids: list[str]
    desc: str
    value: float


Price = Callable[[Instrument], float | None]


@dataclass(frozen=True)
class Venue:
    """Market context at submission: is the XNYS session open, and when do DAY orders expire."""

    session_open: bool
    day_close_ms: int | None
    buying_power: float = float("inf")


class OrderBook:
    def __init__(self, registry: InstrumentRegistry, portfolio: Portfolio) -> None:
        self.registry = registry
        self.portfolio = portfolio
        self.orders: dict[int, Order] = {}
        self.pending: dict[str, PendingReply] = {}
        self.coids: dict[str, datetime] = {}
        self._ids = itertools.count(1_210_386_801)
        self._exec = itertools.count(1)

    # --- placement ------------------------------------------------------------------------------
    def validate(self, raw: Any, account: str) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise OrderError("invalid order: each order must be an object")
        conid = raw.get("conid")
        if conid is None and isinstance(raw.get("conidex"), str):
            conid = int(raw["conidex"].split("@")[0]) if raw["conidex"].split("@")[0].isdigit() else None
        if not isinstance(conid, int) or isinstance(conid, bool):
            raise OrderError("invalid order: conid must be an integer")
        inst = self.registry.by_id(conid)
        if inst is None:
            raise OrderError(f"invalid conid: {conid}")
        if raw.get("acctId") not in (None, account):
            raise OrderError(f"acctId {raw['acctId']} does not match account {account}")
        # "STP LMT" vs "STOP_LIMIT": which spelling current builds accept is UNCONFIRMED (§12); both work.
        order_type = ORDER_TYPES.get(str(raw.get("orderType", "")).upper())
        if order_type is None:
            raise OrderError(f"invalid orderType: {raw.get('orderType')}")
        side = str(raw.get("side", "")).upper()  # TWAPI's bracket example sends "Buy"/"Sell"
        if side not in ("BUY", "SELL"):
            raise OrderError(f"invalid side: {raw.get('side')}")
        tif = str(raw.get("tif", "")).upper()
        if tif not in TIFS:
            raise OrderError(f"invalid tif: {raw.get('tif')}")
        qty = raw.get("quantity")
        if not isinstance(qty, int | float) or isinstance(qty, bool) or qty <= 0:
            raise OrderError("invalid quantity: must be a number > 0")
        price, aux = raw.get("price"), raw.get("auxPrice")
        needs = {"LMT": ("price",), "STP": ("price",), "STOP_LIMIT": ("price", "auxPrice"), "MKT": ()}
        for key in needs[order_type]:
            value = raw.get(key)
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise OrderError("invalid order price fields")  # known gateway text (§3.5)
        coid = raw.get("cOID")
        if coid is not None and not isinstance(coid, str):
            raise OrderError("invalid cOID: must be a string")
        return {"inst": inst, "side": side, "order_type": order_type, "qty": float(qty),
                "price": float(price) if order_type != "MKT" else None,
                "aux_price": float(aux) if order_type == "STOP_LIMIT" else None, "tif": tif,
                "outside_rth": bool(raw.get("outsideRTH", False)), "coid": coid}

    def place(self, account: str, raws: list[Any], now: datetime, market: Price,
              configured: tuple[str, ...] | None, venue: Venue,
              suppressed: set[str] | frozenset[str] = frozenset()) -> list[dict[str, Any]]:
        """Validate, register cOIDs (even while a question is pending), then ask or submit; ``suppressed`` ids
        (the brokerage session's /iserver/questions/suppress) are never asked."""
        reqs = [self.validate(raw, account) for raw in raws]
        if not reqs:
            raise OrderError("no orders in request")
        coids = [r["coid"] for r in reqs if r["coid"]]
        for i, coid in enumerate(coids):
            registered = self.coids.get(coid)
            if coid in coids[:i] or (registered is not None and now - registered < COID_WINDOW):
                raise OrderError(f"Order couldn't be submitted: Local order ID={coid} is already registered.")
        first = reqs[0]
        for r in reqs:  # value at the limit price, else (MKT, STP) at the market
            limit_price = r["price"] if r["order_type"] in ("LMT", "STOP_LIMIT") else None
            r["notional"] = r["qty"] * (limit_price or market(r["inst"]) or 0.0)
        mkt = market(first["inst"])
        value = sum(r["notional"] for r in reqs)
        limit = first["price"] if first["order_type"] in ("LMT", "STOP_LIMIT") else None
        candidates = configured if configured is not None else questions.default_ids(
            first["order_type"], limit, mkt, value
        )
        ids = questions.pending_ids(candidates, suppressed)
        for coid in coids:
            self.coids[coid] = now
        for r in reqs:
            r["account"] = account
        inst = first["inst"]
        listing = "NASDAQ.NMS" if inst.exchange == "NASDAQ" else inst.exchange
        desc = f"{first['side']} {first['qty']:g} {inst.symbol} {listing}"
        desc += f" @ {first['price']}" if first["price"] else ""
        if ids:
            return self._ask(PendingReply(reqs, ids, coids, desc, value))
        return self._submit(reqs, now, venue)

    def inject(self, raw: Any, account: str, now: datetime, venue: Venue) -> dict[str, Any]:
        """An order placed outside this API (admin): validated like a placement, no questions, no buying-power
        check; its cOID (if any) is registered as usual."""
        req = self.validate(raw, account)
        if req["coid"]:
            self.coids[req["coid"]] = now
        req["account"] = account
        (ack,) = self._submit([{**req, "notional": 0.0}], now, venue)
        return ack

    def _ask(self, pending: PendingReply) -> list[dict[str, Any]]:
        reply_id = str(uuid.uuid4())
        self.pending[reply_id] = pending
        first = pending.remaining[0]
        return [{"id": reply_id, "message": [questions.message(first, pending.desc, pending.value)],
                 "isSuppressed": False, "messageIds": [first]}]

    def reply(self, reply_id: str, confirmed: bool, now: datetime, venue: Venue) -> list[dict[str, Any]]:
        pending = self.pending.pop(reply_id, None)  # ids are single-use
        if pending is None:
            raise OrderError("reply id not found")
        if not confirmed:
            for coid in pending.coids:  # never submitted, so the cOID may be reused
                self.coids.pop(coid, None)
            raise OrderError("order not confirmed")
        pending.remaining.pop(0)
        if pending.remaining:
            return self._ask(pending)  # §8.2: questions chain, one per response
        return self._submit(pending.orders, now, venue)

    def _submit(self, reqs: list[dict[str, Any]], now: datetime, venue: Venue) -> list[dict[str, Any]]:
        """PendingSubmit -> Submitted, or PreSubmitted outside regular hours / for unelected stops (§8.7).
        Several orders (bracket/OCA) become independent orders: linking them is not simulated."""
        out = []
        for r in reqs:
            fields = {k: v for k, v in r.items() if k != "notional"}
            order = Order(order_id=next(self._ids), placed_at=now, updated_at=now, **fields)
            held = order.order_type in ("STP", "STOP_LIMIT")
            order.status = "Submitted" if venue.session_open and not held else "PreSubmitted"
            if order.side == "BUY" and r["notional"] > venue.buying_power:
                order.status = "Inactive"  # §8.7: invalid order, here insufficient buying power
            if order.tif in ("DAY", "OPG"):  # OPG is approximated as a DAY order
                order.expires_ms = venue.day_close_ms
            self.orders[order.order_id] = order
            # §8.1-A: `order_id` is a digit STRING here, an int everywhere else.
            out.append({"order_id": str(order.order_id), "order_status": order.status,
                        "encrypt_message": "1"})
        return out

    def modify(
        self, order_id: int, account: str, raw: Any, now: datetime, venue: Venue
    ) -> list[dict[str, Any]]:
        """§8.5 modify: a single object repeating the order; price, quantity, tif and type may change."""
        order = self.orders.get(order_id)
        if order is None or order.account != account:
            raise OrderError(f"OrderID {order_id} doesn't exist")
        if order.status not in WORKING or order.cancel_requested:
            raise OrderError(f"OrderID {order_id} is {order.status} and cannot be modified")
        req = self.validate(raw, account)
        if req["inst"] is not order.inst or req["side"] != order.side:
            raise OrderError("conid and side of an order cannot be modified")
        if req["qty"] < order.filled:
            raise OrderError("quantity cannot be below the filled quantity")
        order.order_type, order.qty, order.price = req["order_type"], req["qty"], req["price"]
        order.aux_price, order.tif, order.outside_rth = req["aux_price"], req["tif"], req["outside_rth"]
        order.triggered, order.updated_at = False, now
        order.expires_ms = venue.day_close_ms if order.tif in ("DAY", "OPG") else None
        return [{"order_id": str(order_id), "order_status": order.status, "encrypt_message": "1"}]

    # --- lifecycle ------------------------------------------------------------------------------
    def cancel(self, order_id: int, account: str, now: datetime) -> dict[str, Any]:
        """Acknowledge only; the order turns Cancelled on the next evaluation (§8.5, asynchronous)."""
        if order_id == -1:  # §8.5: -1 cancels all open orders (1 source)
            for order in self.orders.values():
                if order.status in WORKING:
                    order.cancel_requested = True
            return {"msg": "Request was submitted", "order_id": -1, "conid": -1, "account": account}
        order = self.orders.get(order_id)
        if order is None or order.account != account:
            raise OrderError(f"OrderID {order_id} doesn't exist")
        if order.status not in WORKING:
            raise OrderError(f"OrderID {order_id} is {order.status} and cannot be cancelled")
        order.cancel_requested = True
        return {"msg": "Request was submitted", "order_id": order_id, "conid": order.inst.conid,
                "account": account}

    def evaluate(self, now: datetime, market: Price, tradable: Callable[[Instrument], bool],
                 session_open: bool, commission: Callable[[float], float]) -> None:
        """Advance every working order to `now` (lazy: called whenever orders or positions are read)."""
        for order in self.orders.values():
            if order.status not in WORKING:
                continue
            expired = order.expires_ms is not None and now.timestamp() * 1000 >= order.expires_ms
            if order.cancel_requested or expired:
                order.status, order.updated_at = "Cancelled", now
                continue
            last = market(order.inst) if tradable(order.inst) else None
            fill_at = self._fill_price(order, last) if last is not None else None
            if fill_at is not None:
                self._fill(order, fill_at, now, commission(order.remaining))
            elif last is not None and order.tif == "IOC":
                order.status, order.updated_at = "Cancelled", now
            else:
                held = order.order_type in ("STP", "STOP_LIMIT") and not order.triggered
                status = "Submitted" if session_open and not held else "PreSubmitted"
                if status != order.status:
                    order.status, order.updated_at = status, now

    def _fill_price(self, order: Order, last: float) -> float | None:
        buy = order.side == "BUY"
        if order.order_type in ("STP", "STOP_LIMIT") and not order.triggered:
            stop = order.price if order.order_type == "STP" else order.aux_price
            if stop is None or (last < stop if buy else last > stop):
                return None
            order.triggered = True
        if order.order_type in ("MKT", "STP"):
            return last
        limit = order.price or 0.0
        return last if (last <= limit if buy else last >= limit) else None

    def _fill(self, order: Order, price: float, now: datetime, fee: float) -> None:
        qty = order.remaining
        ex = Execution(f"0000e0d5.{order.order_id:08x}.01.{next(self._exec):02d}", order.order_id, order.inst,
                       order.side, qty, round(price, 2), round(fee, 2), now, order.coid)
        self.portfolio.apply_fill(ex)
        order.fills.append(ex)
        order.avg_price = (order.avg_price * order.filled + ex.price * qty) / (order.filled + qty)
        order.filled += qty
        order.status, order.updated_at = "Filled", now
