"""Inputs and outputs of the risk assessment: trading state, positions, verdicts, order proposals, decisions."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Mode = Literal["dry_run", "paper", "live"]
Side = Literal["BUY", "SELL"]
VerdictLevel = Literal["pass", "warn", "fail"]


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"  # all orders allowed (subject to the other checks)
    REDUCING = "REDUCING"  # only orders that reduce an existing position
    HALTED = "HALTED"  # no orders at all


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Position(_Frozen):
    quantity: float  # shares; negative = short
    avg_cost: float | None = None


class Working(_Frozen):
    """Shares in orders that may still trade: the broker's live orders plus intents not yet at the broker."""

    buy: float = 0.0
    sell: float = 0.0


class QualityVerdict(_Frozen):
    verdict: VerdictLevel
    reasons: tuple[str, ...] = ()


def to_position(value: Any) -> Position:
    """Accept ``Position``, ``{"qty"|"quantity": .., "avg_cost": ..}``, ``(qty, avg_cost)`` or an IBKR Position."""
    if isinstance(value, Position):
        return value
    if isinstance(value, Mapping):
        qty = value.get("qty", value.get("quantity"))
        return Position(quantity=float(qty or 0), avg_cost=value.get("avg_cost"))
    if isinstance(value, tuple | list):
        return Position(quantity=float(value[0]), avg_cost=value[1] if len(value) > 1 else None)
    if hasattr(value, "quantity"):
        return Position(quantity=float(value.quantity), avg_cost=getattr(value, "avg_cost", None))
    return Position(quantity=float(value))


def to_verdict(value: Any) -> QualityVerdict:
    """Accept ``(verdict, reasons)``, ``{"verdict": .., "reasons": ..}``, a bare string, or an object with
    ``.verdict``/``.reasons`` (include.quality's Verdict)."""
    if isinstance(value, QualityVerdict):
        return value
    if isinstance(value, str):
        verdict, reasons = value, ()
    elif isinstance(value, Mapping):
        verdict, reasons = value.get("verdict"), value.get("reasons") or ()
    elif isinstance(value, tuple | list):
        verdict, reasons = value[0], value[1] if len(value) > 1 else ()
    else:
        verdict, reasons = getattr(value, "verdict", None), getattr(value, "reasons", ()) or ()
    if isinstance(reasons, str):
        reasons = (reasons,)
    return QualityVerdict(verdict=str(verdict).lower(), reasons=tuple(str(r) for r in reasons))


class RiskContext(_Frozen):
    """Everything the checks may look at besides the signal itself."""

    mode: Mode
    account_id: str | None
    trading_state: TradingState
    market_open: bool
    market_open_source: str  # "input" or "calendar XNYS at <time>"
    positions: dict[str, Position]
    working: dict[str, Working] = {}
    last_prices: dict[str, float]
    price_notes: dict[str, str] = {}  # symbol -> why it has no usable last price (no quote, stale, no timestamp)
    orders_today: int = Field(ge=0)
    verdicts: dict[str, QualityVerdict]
    net_liquidation: float | None = None
    gross_position_value: float  # $ of all positions now (given, or from positions x last prices)
    gross_position_value_source: str

    def position_qty(self, symbol: str) -> float:
        position = self.positions.get(symbol)
        return position.quantity if position else 0.0

    def exposure_qty(self, symbol: str) -> float:
        """What a BUY adds to: the position plus working BUYs (so repeated BUYs cannot pile past the caps)."""
        working = self.working.get(symbol)
        return self.position_qty(symbol) + (working.buy if working else 0.0)

    def sellable_qty(self, symbol: str) -> float:
        """What a SELL may take: the position net of working SELLs (two SELLs cannot open a short)."""
        working = self.working.get(symbol)
        return self.position_qty(symbol) - (working.sell if working else 0.0)


class OrderProposal(_Frozen):
    """What the order would be (before the checks): built by ``sizing.propose``."""

    symbol: str
    side: Side
    confidence: float
    signal_price: float | None  # the price the strategy saw
    last_price: float | None
    limit_price: float | None
    quantity: int  # whole shares, 0 when it cannot be sized
    notional: float  # quantity x limit price
    position_qty: float  # before the order, net of working orders (BUY: + working buys; SELL: - working sells)
    position_notional: float  # |position| x last price, before the order
    reduces_position: bool  # a SELL against a long position (never more than held)
    sizing: str  # how the quantity was derived (which dollar cap bound it)


class CheckResult(_Frozen):
    check: str
    approved: bool
    reason: str


class RiskDecision(_Frozen):
    symbol: str
    strategy_id: int
    action: Literal["BUY", "SELL", "HOLD"]
    status: Literal["approved", "vetoed", "hold"]
    approved: bool
    side: Side | None = None
    quantity: int = 0  # 0 unless approved
    limit_price: float | None = None
    last_price: float | None = None
    notional: float = 0.0
    confidence: float
    reduces_position: bool = False
    position_before: float | None = None  # the position (with working orders) the order was sized against
    sizing: str = ""
    vetoes: tuple[CheckResult, ...] = ()
    checks: tuple[CheckResult, ...] = ()  # every check run, approvals included (the audit trail)
    rationale: str = ""  # the signal's own rationale, for the report

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
