"""What the broker knows about our intents: live orders and executions matched by cOID (``order_ref``),
mapped onto ledger statuses. Reads only; placing orders is the executor's job."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from include.execution import ledger
from include.execution.models import ACKNOWLEDGED, CANCELLED, FILLED, REJECTED, IntentRecord

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

    from include.ibkr.models import Contract, LiveOrder, OrderAck, OrderRequest, OrderStatus, Trade

log = logging.getLogger("include.execution")

# IBKR order statuses (ibkr-cp-api.md §8.7) that end an order; everything else is still working.
_FINAL = {"filled": FILLED, "cancelled": CANCELLED, "apicancelled": CANCELLED, "inactive": REJECTED}
TRADE_DAYS = 7  # §8.9 maximum: reconciles runs up to a week old (a cOID is only unique for 24 h anyway)


class Broker(Protocol):
    """The part of ``include.ibkr.client.IBKRClient`` that execution uses."""

    @property
    def account_id(self) -> str: ...

    def resolve_contract(self, symbol: str) -> Contract: ...

    def place_order(self, order: OrderRequest, *, confirm: bool = True) -> OrderAck: ...

    def order_status(self, order_id: int | str) -> OrderStatus: ...

    def live_orders(self) -> list[LiveOrder]: ...

    def trades(self, days: int = 1) -> list[Trade]: ...


def ledger_status(broker_status: str | None, filled: float, quantity: float) -> str:
    """Broker status -> ledger status; a complete fill counts as filled whatever the status string says."""
    if quantity and filled >= quantity - 1e-9:
        return FILLED
    return _FINAL.get((broker_status or "").replace(" ", "").lower(), ACKNOWLEDGED)


@dataclass
class BrokerView:
    """Live orders (one call, with the §8.3 pre-flight handled by the client) and, on demand, the last week
    of executions, both indexed by cOID."""

    broker: Broker
    live: dict[str, LiveOrder] = field(default_factory=dict)
    _trades: dict[str, list[Trade]] | None = None

    @classmethod
    def fetch(cls, broker: Broker) -> BrokerView:
        view = cls(broker)
        for order in broker.live_orders():
            if order.coid:
                view.live[order.coid] = order
        return view

    def trades_for(self, coid: str) -> list[Trade]:
        if self._trades is None:  # paced at 1 request / 5 s by IBKR: fetch at most once per view
            self._trades = {}
            for trade in self.broker.trades(days=TRADE_DAYS):
                if trade.coid:
                    self._trades.setdefault(trade.coid, []).append(trade)
        return self._trades.get(coid, [])


def apply_state(
    conn: PgConnection, intent: IntentRecord, *, broker_status: str | None, filled: float | None,
    avg_price: float | None, order_id: str | None, source: str, try_number: int | None, payload: Any = None,
    note: str = "",
) -> IntentRecord:
    """Record what the broker reports if it changes anything (status, broker id, fills)."""
    filled_qty = filled if filled is not None else intent.filled_quantity
    status = ledger_status(broker_status, filled_qty, intent.quantity)
    changes: dict[str, Any] = {}
    if order_id and order_id != intent.broker_order_id:
        changes["broker_order_id"] = order_id
    if broker_status and broker_status != intent.broker_status:
        changes["broker_status"] = broker_status
    if abs(filled_qty - intent.filled_quantity) > 1e-9:
        changes["filled_quantity"] = filled_qty
    if avg_price is not None and avg_price != intent.avg_fill_price:
        changes["avg_fill_price"] = avg_price
    if status == intent.status and not changes:
        return intent
    kind = "fill" if filled_qty > intent.filled_quantity + 1e-9 else "status"
    fill = f", filled {filled_qty:g}/{intent.quantity:g} @ {avg_price:g}" if filled_qty and avg_price else ""
    message = f"{source}: broker status {broker_status or '?'}{fill}{note}"
    return ledger.transition(conn, intent, status, try_number=try_number, kind=kind, message=message,
                             payload=payload, **changes)


def match_at_broker(
    conn: PgConnection, view: BrokerView, intent: IntentRecord, try_number: int | None, note: str = "",
) -> IntentRecord | None:
    """Find the intent's order at the broker by cOID (live orders, then executions) and record it; None if the
    broker has no trace of it."""
    live = view.live.get(intent.coid)
    if live is not None:
        return apply_state(
            conn, intent, broker_status=live.status, filled=live.filled_quantity, avg_price=live.avg_price,
            order_id=str(live.order_id), source="live orders (matched by cOID)", try_number=try_number,
            payload=live.model_dump(mode="json"), note=note,
        )  # fmt: skip
    trades = view.trades_for(intent.coid)
    if not trades:
        return None
    qty = sum(t.size for t in trades)
    avg = sum(t.size * t.price for t in trades) / qty
    updated = apply_state(
        conn, intent, broker_status="Filled" if qty >= intent.quantity - 1e-9 else None, filled=qty,
        avg_price=round(avg, 6), order_id=None, source="executions (matched by cOID)", try_number=try_number,
        payload=[t.model_dump(mode="json") for t in trades], note=note,
    )  # fmt: skip
    record_executions(conn, updated, trades)
    return updated


def record_executions(conn: PgConnection, intent: IntentRecord, trades: list[Trade]) -> int:
    """One fill event per execution id; returns how many were new."""
    return sum(
        ledger.record_execution(conn, intent, t.execution_id, t.size, t.price, t.model_dump(mode="json"))
        for t in trades
    )


def poll_status(conn: PgConnection, broker: Broker, intent: IntentRecord, try_number: int | None) -> IntentRecord:
    """``/iserver/account/order/status/{id}`` for an acknowledged intent."""
    if not intent.broker_order_id:
        return intent
    status = broker.order_status(intent.broker_order_id)
    return apply_state(
        conn, intent, broker_status=status.status, filled=status.cum_fill, avg_price=status.avg_price,
        order_id=str(status.order_id), source="order status", try_number=try_number,
        payload=status.model_dump(mode="json"),
    )  # fmt: skip
