"""Reconciliation rules (pure): the broker's positions, orders and executions against the order ledger.

The kinds of mismatch and what is deferred instead: docs/portfolio.md.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from include.execution.models import IntentRecord

EPS = 1e-6
UNKNOWN_POSITION, MISSING_FILL, ORPHAN_OPEN_ORDER = "unknown_position", "missing_fill", "orphan_open_order"
DONE_ORDER_STATUSES = frozenset({"filled", "cancelled", "apicancelled", "inactive"})  # §8.7
TRADE_WINDOW = timedelta(days=6)  # §8.9 serves today + 6 days: older fills cannot be checked at the broker


@dataclass(frozen=True)
class BrokerOrder:
    order_id: int
    coid: str | None
    symbol: str | None
    side: str | None
    status: str | None
    total_size: float | None
    filled_quantity: float | None

    @property
    def working(self) -> bool:
        return (self.status or "").replace(" ", "").lower() not in DONE_ORDER_STATUSES


@dataclass(frozen=True)
class BrokerTrade:
    execution_id: str
    coid: str | None
    symbol: str | None
    side: str
    quantity: float
    price: float


@dataclass(frozen=True)
class Mismatch:
    kind: str
    symbol: str | None
    message: str
    key: str  # what identifies it across runs (symbol, cOID, order id): the alert fingerprint
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Findings:
    mismatches: list[Mismatch] = field(default_factory=list)
    deferred: list[dict[str, Any]] = field(default_factory=list)  # timing races, re-checked next run

    @property
    def status(self) -> str:
        return "mismatch" if self.mismatches else "clean"

    def fingerprint(self) -> str | None:
        if not self.mismatches:
            return None
        keys = sorted(f"{m.kind}:{m.key}" for m in self.mismatches)
        return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]

    def reason(self) -> str:
        """One line for the trading state: counts per kind and the first few messages."""
        counts: dict[str, int] = defaultdict(int)
        for m in self.mismatches:
            counts[m.kind] += 1
        head = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        shown = "; ".join(m.message for m in self.mismatches[:3])
        more = f"; +{len(self.mismatches) - 3} more" if len(self.mismatches) > 3 else ""
        return f"reconciliation mismatch ({head}): {shown}{more}"

    def as_json(self) -> list[dict[str, Any]]:
        return [asdict(m) for m in self.mismatches]


def _signed(side: str | None, qty: float) -> float:
    return -qty if (side or "").upper() == "SELL" else qty


def ledger_positions(intents: Iterable[IntentRecord]) -> dict[str, float]:
    """Signed quantity the ledger's fills explain, per symbol."""
    out: dict[str, float] = defaultdict(float)
    for i in intents:
        out[i.symbol] += _signed(i.side, i.filled_quantity)
    return dict(out)


def expected_range(intents: Iterable[IntentRecord]) -> dict[str, tuple[float, float]]:
    """How far each symbol's position may still move by the ledger's working orders' unfilled remainder."""
    out: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for i in intents:
        if i.terminal:
            continue
        rest = _signed(i.side, max(i.quantity - i.filled_quantity, 0.0))
        out[i.symbol][0 if rest < 0 else 1] += rest
    return {s: (lo, hi) for s, (lo, hi) in out.items()}


def find_mismatches(
    *, positions: Mapping[str, float], orders: Iterable[BrokerOrder], trades: Iterable[BrokerTrade],
    intents: Iterable[IntentRecord], baseline: Mapping[str, float], snapshot_at: datetime,
    grace: timedelta = timedelta(minutes=2),
) -> Findings:
    """``intents``: the paper/live intents of the broker's account. ``grace``: an intent changed this recently
    may not be reflected everywhere yet (written, then sent; sent, then filled), so its differences are
    deferred to the next run rather than halting trading."""
    intents = list(intents)
    by_coid = {i.coid: i for i in intents}
    found = Findings()

    def recent(intent: IntentRecord) -> bool:
        return not intent.terminal and snapshot_at - intent.updated_at < grace

    # Positions: baseline + ledger fills, with room for working orders still filling.
    explained = ledger_positions(intents)
    room = expected_range(intents)
    for symbol in sorted(set(positions) | set(explained) | set(baseline)):
        held = positions.get(symbol, 0.0)
        expected = baseline.get(symbol, 0.0) + explained.get(symbol, 0.0)
        if abs(held - expected) <= EPS:
            continue
        lo, hi = room.get(symbol, (0.0, 0.0))
        data = {"broker_quantity": held, "expected_quantity": expected, "ledger_fills": explained.get(symbol, 0.0),
                "baseline": baseline.get(symbol, 0.0), "working_range": [lo, hi]}
        if expected + lo - EPS <= held <= expected + hi + EPS:
            found.deferred.append({"kind": UNKNOWN_POSITION, "symbol": symbol, **data,
                                   "why": "within what the ledger's working orders may have filled"})
            continue
        found.mismatches.append(Mismatch(
            UNKNOWN_POSITION, symbol, f"{symbol}: broker holds {held:g}, ledger fills + baseline explain {expected:g}",
            symbol, data))  # fmt: skip

    # Executions, by cOID.
    executed: dict[str | None, list[BrokerTrade]] = defaultdict(list)
    for t in trades:
        executed[t.coid].append(t)
    for coid, group in sorted(executed.items(), key=lambda kv: kv[0] or ""):
        qty = sum(t.quantity for t in group)
        intent = by_coid.get(coid) if coid else None
        ids = sorted(t.execution_id for t in group)
        if intent is None:
            symbol = group[0].symbol
            found.mismatches.append(Mismatch(
                MISSING_FILL, symbol, f"{symbol}: execution(s) {', '.join(ids)} ({qty:g}) with cOID {coid!r} "
                "not in the ledger", f"exec:{coid or ids[0]}",
                {"coid": coid, "execution_ids": ids, "quantity": qty}))  # fmt: skip
        elif intent.filled_quantity < qty - EPS:
            entry = {"coid": coid, "intent_id": intent.intent_id, "status": intent.status,
                     "ledger_filled": intent.filled_quantity, "broker_executed": qty, "execution_ids": ids}
            if recent(intent):
                found.deferred.append({"kind": MISSING_FILL, "symbol": intent.symbol, **entry,
                                       "why": "intent changed within the grace period"})
            else:
                found.mismatches.append(Mismatch(
                    MISSING_FILL, intent.symbol, f"{intent.symbol}: broker executed {qty:g} for intent "
                    f"{intent.intent_id} ({intent.status}), ledger shows {intent.filled_quantity:g} filled",
                    f"intent:{intent.intent_id}", entry))  # fmt: skip
    for intent in intents:  # ledger fills the broker does not have (only where the broker can still tell)
        got = sum(t.quantity for t in executed.get(intent.coid, []))
        if intent.filled_quantity > got + EPS and snapshot_at - intent.created_at < TRADE_WINDOW:
            found.mismatches.append(Mismatch(
                MISSING_FILL, intent.symbol, f"{intent.symbol}: ledger shows {intent.filled_quantity:g} filled for "
                f"intent {intent.intent_id}, the broker executed {got:g}", f"ledger:{intent.intent_id}",
                {"coid": intent.coid, "intent_id": intent.intent_id, "ledger_filled": intent.filled_quantity,
                 "broker_executed": got}))  # fmt: skip

    # Working orders must belong to a live intent of the ledger.
    for order in orders:
        if not order.working:
            continue
        intent = by_coid.get(order.coid) if order.coid else None
        if intent is not None and not intent.terminal:
            continue
        why = "not in the ledger" if intent is None else f"its intent {intent.intent_id} is {intent.status}"
        found.mismatches.append(Mismatch(
            ORPHAN_OPEN_ORDER, order.symbol, f"{order.symbol}: open order {order.order_id} ({order.side} "
            f"{order.total_size or 0:g}, cOID {order.coid!r}) {why}", f"order:{order.order_id}",
            {"order_id": order.order_id, "coid": order.coid, "status": order.status,
             "intent_status": intent.status if intent else None}))  # fmt: skip
    return found


def report(findings: Findings, **context: Any) -> str:
    """The JSON report (MLflow artifact, alert details)."""
    return json.dumps({**context, "status": findings.status, "mismatches": findings.as_json(),
                       "deferred": findings.deferred}, indent=2, default=str)

