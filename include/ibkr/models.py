"""Immutable domain types built from IBKR Client Portal payloads (pydantic, frozen) plus the fast ``Bar``."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

Side = Literal["BUY", "SELL"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Bar(NamedTuple):
    """One daily bar; a NamedTuple, not pydantic, because benchmarks build ~1e6 of them."""

    symbol: str
    conid: int
    session_date: date
    open: float
    high: float
    low: float
    close: float
    volume: float  # shares (IBKR reports round lots; parse_history converts)


class AuthStatus(_Frozen):
    authenticated: bool
    competing: bool
    connected: bool
    message: str = ""
    server_name: str | None = None
    server_version: str | None = None

    @property
    def healthy(self) -> bool:
        # §2.1 health rule used by ibind and IBeam.
        return self.authenticated and self.connected and not self.competing


class TickleResponse(_Frozen):
    session: str | None = None
    sso_expires_ms: int | None = None
    collision: bool = False
    user_id: int | None = None
    auth_status: AuthStatus | None = None


class BrokerageAccounts(_Frozen):
    accounts: list[str]
    selected_account: str | None = None
    is_paper: bool
    server_name: str | None = None


class Contract(_Frozen):
    symbol: str
    conid: int
    exchange: str | None = None
    company_name: str | None = None
    currency: str = "USD"


class Snapshot(_Frozen):
    symbol: str
    conid: int
    captured_at: datetime  # the gateway's "_updated" time, else when the response arrived (never None)
    quote_at: datetime | None = None  # the gateway's "_updated" time only: None when it sent none (age unknown)
    last: float | None = None
    last_price_type: Literal["last", "close", "halted"] | None = None
    bid: float | None = None
    ask: float | None = None
    bid_size: float | None = None  # shares
    ask_size: float | None = None  # shares
    last_size: float | None = None  # shares
    volume: float | None = None  # shares
    day_high: float | None = None
    day_low: float | None = None
    open: float | None = None
    prior_close: float | None = None
    change: float | None = None
    change_pct: float | None = None
    md_availability: str | None = None
    server_id: str | None = None


class Position(_Frozen):
    account_id: str | None
    conid: int
    symbol: str
    quantity: float
    asset_class: str | None = None
    market_price: float | None = None
    market_value: float | None = None
    avg_cost: float | None = None
    avg_price: float | None = None
    unrealized_pnl: float | None = None
    realized_pnl: float | None = None
    currency: str | None = None
    listing_exchange: str | None = None


class LedgerEntry(_Frozen):
    currency: str  # currency code or "BASE"
    cash_balance: float | None = None
    settled_cash: float | None = None
    net_liquidation: float | None = None
    stock_market_value: float | None = None
    unrealized_pnl: float | None = None
    realized_pnl: float | None = None
    timestamp: datetime | None = None


class AccountSummary(_Frozen):
    account_id: str | None = None
    values: dict[str, float | None]

    def get(self, key: str) -> float | None:
        return self.values.get(key)

    @property
    def net_liquidation(self) -> float | None:
        return self.values.get("netliquidation")

    @property
    def total_cash(self) -> float | None:
        return self.values.get("totalcashvalue")

    @property
    def buying_power(self) -> float | None:
        return self.values.get("buyingpower")

    @property
    def gross_position_value(self) -> float | None:
        return self.values.get("grosspositionvalue")


class OrderRequest(_Frozen):
    conid: int
    side: Side
    quantity: float = Field(gt=0)
    order_type: Literal["LMT", "MKT", "STP", "STOP_LIMIT"]
    tif: Literal["DAY", "GTC", "IOC", "OPG"] = "DAY"
    price: float | None = None
    aux_price: float | None = None
    coid: str | None = None
    outside_rth: bool = False
    account_id: str | None = None

    @model_validator(mode="after")
    def _check_prices(self) -> OrderRequest:
        # §8.1: price = limit (LMT, STOP_LIMIT) or stop (STP); auxPrice = stop for STOP_LIMIT.
        needs_price = self.order_type in ("LMT", "STP", "STOP_LIMIT")
        if needs_price and self.price is None:
            raise ValueError(f"{self.order_type} order needs a price")
        if self.order_type == "STOP_LIMIT" and self.aux_price is None:
            raise ValueError("STOP_LIMIT order needs aux_price (the stop price)")
        if self.order_type == "MKT" and (self.price is not None or self.aux_price is not None):
            raise ValueError("MKT order must not carry price/aux_price")
        for name in ("price", "aux_price", "quantity"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        return self

    def to_payload(self) -> dict[str, Any]:
        """The case-sensitive IBKR order body (§8.1); None values are omitted."""
        payload: dict[str, Any] = {
            "conid": self.conid,
            "orderType": self.order_type,
            "side": self.side,
            "tif": self.tif,
            "quantity": self.quantity,
            "price": self.price,
            "auxPrice": self.aux_price,
            "cOID": self.coid,
            "outsideRTH": self.outside_rth,
            "acctId": self.account_id,
        }
        return {k: v for k, v in payload.items() if v is not None}


class OrderQuestion(_Frozen):
    reply_id: str
    messages: list[str]
    message_ids: list[str] = []


class OrderAck(_Frozen):
    order_id: str
    order_status: str | None = None
    coid: str | None = None
    questions_confirmed: list[str] = []


class LiveOrder(_Frozen):
    order_id: int
    conid: int | None = None
    symbol: str | None = None
    side: Side | None = None
    status: str | None = None
    order_type: str | None = None
    tif: str | None = None
    total_size: float | None = None
    filled_quantity: float | None = None
    remaining_quantity: float | None = None
    price: float | None = None
    avg_price: float | None = None
    coid: str | None = None
    account: str | None = None


class OrderStatus(_Frozen):
    order_id: int
    conid: int | None = None
    symbol: str | None = None
    side: Side | None = None
    status: str | None = None
    order_type: str | None = None
    tif: str | None = None
    total_size: float | None = None
    cum_fill: float | None = None
    remaining: float | None = None
    avg_price: float | None = None
    limit_price: float | None = None
    stop_price: float | None = None
    account: str | None = None
    coid: str | None = None


class Trade(_Frozen):
    execution_id: str
    symbol: str | None = None
    side: Side | None = None
    size: float
    price: float
    trade_time: datetime | None = None
    coid: str | None = None
    conid: int | None = None
    commission: float | None = None
    account: str | None = None


class CancelAck(_Frozen):
    order_id: int | None = None
    message: str
    conid: int | None = None
    account: str | None = None
