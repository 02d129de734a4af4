"""Order-intent types: what risk approved (``OrderPlan``), where it came from (``RunContext``), the ledger row
(``IntentRecord``), statuses, and the intent id of one decision per (strategy, symbol, session, mode) = IBKR cOID."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

Mode = Literal["dry_run", "paper", "live"]
MODES: tuple[str, ...] = ("dry_run", "paper", "live")

PENDING = "pending"  # written, provably never sent
SUBMITTED = "submitted"  # POST sent or in flight: outcome unknown until the broker says otherwise
UNKNOWN = "unknown"  # the answer was lost or malformed after the gateway may have accepted it: reconcile by cOID
ACKNOWLEDGED = "acknowledged"  # the broker has it (working, maybe partly filled)
FILLED = "filled"
CANCELLED = "cancelled"
REJECTED = "rejected"  # refused by the broker (4xx on placement, or status Inactive)
FAILED = "failed"  # given up without a broker order (see last_error); never resubmitted automatically
SIMULATED = "simulated"  # dry_run: recorded with the price it would have used, never sent
VETOED = "vetoed"  # never sent: the re-check right before submission refused it (HALT, market closed, stale quote)
STATUSES = (PENDING, SUBMITTED, UNKNOWN, ACKNOWLEDGED, FILLED, CANCELLED, REJECTED, FAILED, SIMULATED, VETOED)
TERMINAL = frozenset({FILLED, CANCELLED, REJECTED, FAILED, SIMULATED, VETOED})
WORKING = frozenset({PENDING, SUBMITTED, UNKNOWN, ACKNOWLEDGED})  # may still trade: counted as working orders by risk
UNRESOLVED = frozenset({PENDING, SUBMITTED, UNKNOWN})  # must be matched against the broker before any resubmission

# IBKR documents no cOID length limit (ibkr-cp-api.md §8.6 says only "free-form, unique within 24 h"), so
# stay short and plain: "oi" + 20 hex chars (80 bits of SHA-256) = 22 ASCII characters.
COID_PREFIX = "oi"
COID_HEX_CHARS = 20


def make_intent_id(strategy_id: str | int, symbol: str, session: date | str, mode: str) -> str:
    """Deterministic id of the ONE order decision a strategy may take for a symbol in an exchange session and
    mode: every run, retry, clear or other DAG of the same strategy and session yields the same id (and cOID)."""
    day = session.isoformat() if isinstance(session, date) else str(session)
    key = "\x1f".join((str(strategy_id), symbol.strip().upper(), day, mode))
    return COID_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:COID_HEX_CHARS]


@dataclass(frozen=True)
class RunContext:
    """Where the decision was made: the Airflow run (and try), the strategy mode and the MLflow run."""

    dag_id: str
    run_id: str
    mode: Mode
    try_number: int = 1
    mlflow_run_id: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not self.dag_id or not self.run_id:
            raise ValueError("dag_id and run_id are required: every order must trace back to its DAG run")


@dataclass(frozen=True)
class OrderPlan:
    """One order approved by risk. ``ref_price`` is the price the decision used (last/close); the
    ``signal``/``risk``/``dq`` dicts are stored verbatim (jsonb) so the decision can be audited later."""

    strategy_id: str | int
    symbol: str
    side: Literal["BUY", "SELL"]
    quantity: float
    ref_price: float
    order_type: Literal["LMT", "MKT"] = "LMT"
    limit_price: float | None = None
    tif: Literal["DAY", "GTC", "IOC", "OPG"] = "DAY"
    conid: int | None = None
    session_date: date | None = None  # the exchange session the decision is for (part of the intent id)
    position_before: float | None = None  # the position risk sized against: held + working orders
    signal: dict[str, Any] = field(default_factory=dict)
    risk: dict[str, Any] = field(default_factory=dict)
    dq: dict[str, Any] = field(default_factory=dict)

    @property
    def target_position(self) -> float | None:
        """The position this decision aims at: the position it was sized against, plus or minus the order."""
        if self.position_before is None:
            return None
        return self.position_before + (self.quantity if self.side == "BUY" else -self.quantity)

    def __post_init__(self) -> None:
        object.__setattr__(self, "symbol", self.symbol.strip().upper())
        where = f"order plan {self.side} {self.quantity} {self.symbol}"
        if self.side not in ("BUY", "SELL"):
            raise ValueError(f"{where}: side must be BUY or SELL")
        for name in ("quantity", "ref_price"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{where}: {name} must be a positive finite number, got {value!r}")
        if self.order_type == "LMT" and not (self.limit_price and math.isfinite(self.limit_price)
                                             and self.limit_price > 0):
            raise ValueError(f"{where}: a LMT order needs a positive limit_price")
        if self.order_type == "MKT" and self.limit_price is not None:
            raise ValueError(f"{where}: a MKT order must not carry a limit_price")

    def intent_id(self, run: RunContext) -> str:
        if self.session_date is None:
            raise ValueError(f"order plan {self.side} {self.symbol} has no session_date: an intent is one decision "
                             "per strategy, symbol and session")
        return make_intent_id(self.strategy_id, self.symbol, self.session_date, run.mode)

    @classmethod
    def from_decision(cls, decision: Any, *, session_date: date, signal: Any = None, dq: Any = None,
                      conid: int | None = None, tif: Literal["DAY", "GTC", "IOC", "OPG"] = "DAY") -> OrderPlan:
        """An approved ``include.risk.models.RiskDecision`` (duck-typed: execution does not import risk) as a
        plan: LMT at its limit price (MKT if it has none), ref price = the last price risk sized against."""
        if not getattr(decision, "approved", False) or decision.side is None or not decision.quantity:
            raise ValueError(f"risk decision for {decision.symbol} is not an approved order: {decision.status!r}")
        as_dict = lambda obj: obj.to_dict() if hasattr(obj, "to_dict") else dict(obj or {})  # noqa: E731
        limit = decision.limit_price
        return cls(
            strategy_id=decision.strategy_id, symbol=decision.symbol, side=decision.side,
            quantity=decision.quantity, ref_price=decision.last_price or limit, order_type="LMT" if limit else "MKT",
            limit_price=limit, tif=tif, conid=conid, session_date=session_date,
            position_before=getattr(decision, "position_before", None), signal=as_dict(signal), risk=as_dict(decision),
            dq=as_dict(dq),
        )  # fmt: skip


@dataclass(frozen=True)
class IntentRecord:
    """One row of ``trading.order_intents``."""

    intent_id: str
    dag_id: str
    run_id: str
    try_number: int
    strategy_id: str
    symbol: str
    conid: int | None
    side: str
    quantity: float
    order_type: str
    tif: str
    limit_price: float | None
    ref_price: float | None
    mode: str
    account_id: str | None
    status: str
    broker_order_id: str | None
    broker_status: str | None
    coid: str
    filled_quantity: float
    avg_fill_price: float | None
    last_error: str | None
    mlflow_run_id: str | None
    session_date: date | None
    position_before: float | None
    target_position: float | None
    signal: dict[str, Any] | None
    risk_decision: dict[str, Any] | None
    dq_verdict: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def describe(self) -> str:
        price = f" @ {self.limit_price:g}" if self.limit_price is not None else ""
        return f"{self.side} {self.quantity:g} {self.symbol} {self.order_type}{price} (intent {self.intent_id})"
