"""Signal type, the ``Strategy`` protocol and helpers shared by the strategies (missing data -> HOLD)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["BUY", "SELL", "HOLD"]
PriceSource = Literal["snapshot_last", "close"]
Features = Mapping[str, Any]


class Signal(BaseModel):
    """What a strategy says about one symbol. It carries no quantity or price limit: only ``include.risk``
    turns an approved signal into an order size, so a strategy cannot size or place orders itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str
    action: Action
    confidence: float = Field(ge=0.0, le=1.0)
    rationale: str
    strategy_id: int
    model: str
    inputs: dict[str, Any] = Field(default_factory=dict)  # feature values the decision used
    price_reference: float | None = None  # the price the signal was computed against
    price_source: PriceSource | None = None
    session_date: date | None = None
    trace: dict[str, Any] | None = None  # LLM call record: prompt version, prompt, raw response, latency, usage
    trace_id: str | None = None  # the MLflow trace of an LLM decision (kept in the order intent's signal JSON)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Strategy(Protocol):
    """A pure function of features (no broker, no database); never raises for missing data."""

    strategy_id: int
    model: str

    def generate(
        self,
        symbol: str,
        features: Features | None,
        previous: Features | None = None,
        chart_png: bytes | None = None,
    ) -> Signal: ...


def to_float(value: Any) -> float | None:
    """A finite float, or None for NULL / NaN / inf / non-numeric values (Postgres numerics arrive as Decimal)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def require(features: Features | None, names: tuple[str, ...], prefix: str = "") -> tuple[dict[str, float], list[str]]:
    """The named values as floats, and the names that are NULL or missing (prefixed, e.g. ``previous.sma_20``)."""
    values: dict[str, float] = {}
    missing: list[str] = []
    for name in names:
        value = to_float(features.get(name)) if features is not None else None
        if value is None:
            missing.append(prefix + name)
        else:
            values[name] = value
    return values, missing


def price_reference(features: Features | None) -> tuple[float | None, PriceSource | None]:
    """The snapshot's last price when one was taken after the session, else the session close."""
    if features is None:
        return None, None
    last = to_float(features.get("snapshot_last_price"))
    if last is not None and last > 0:
        return last, "snapshot_last"
    close = to_float(features.get("close"))
    if close is not None and close > 0:
        return close, "close"
    return None, None


def session_of(features: Features | None) -> date | None:
    """The row's session date (a ``date``, or the ISO string it becomes in XCom); None when absent or garbled."""
    value = features.get("session_date") if features is not None else None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value[:10]) if isinstance(value, str) else None
    except ValueError:
        return None


def scaled_confidence(distance: float, full_at: float) -> float:
    """0.5 at the trigger, rising linearly with ``distance`` to 1.0 at ``full_at`` (then capped).

    Rule strategies use this so a barely-crossed threshold (≈0.5) stays under the default 0.7 risk
    floor, while a decisive move passes it.
    """
    return round(0.5 + 0.5 * min(1.0, max(0.0, distance) / full_at), 4)


def make_signal(
    symbol: str,
    action: Action,
    confidence: float,
    rationale: str,
    *,
    strategy_id: int,
    model: str,
    features: Features | None,
    inputs: Mapping[str, Any] | None = None,
    trace: dict[str, Any] | None = None,
) -> Signal:
    price, source = price_reference(features)
    return Signal(
        symbol=symbol, action=action, confidence=confidence, rationale=rationale, strategy_id=strategy_id,
        model=model, inputs=dict(inputs or {}), price_reference=price, price_source=source,
        session_date=session_of(features), trace=trace,
    )  # fmt: skip


def hold(symbol: str, reason: str, *, strategy_id: int, model: str, features: Features | None = None,
         inputs: Mapping[str, Any] | None = None, trace: dict[str, Any] | None = None) -> Signal:
    """HOLD with confidence 0: no conviction either way (missing data, no trigger, or a failed model call)."""
    return make_signal(symbol, "HOLD", 0.0, reason, strategy_id=strategy_id, model=model, features=features,
                       inputs=inputs, trace=trace)


def missing_reason(missing: list[str]) -> str:
    return f"HOLD: missing or NULL features {', '.join(missing)} (indicator warm-up or no data)"


def previous_is_older(features: Features, previous: Features | None) -> bool:
    """The previous row must be an earlier session than the latest one (else a crossover cannot be read)."""
    latest, prev = session_of(features), session_of(previous)
    return latest is None or prev is None or prev < latest


def crossing_inputs(
    symbol: str, features: Features | None, previous: Features | None, names: tuple[str, ...],
    previous_names: tuple[str, ...], ctx: Mapping[str, Any],
) -> tuple[dict[str, float], dict[str, float], Signal | None]:
    """What a crossing rule reads: the latest row's ``names`` and the previous row's ``previous_names`` (both as
    floats, ``names`` including ``atr_14``), or a HOLD saying why they cannot be read (no row, NULL or missing
    values, a previous row that is not older, ATR-14 not positive). ``ctx`` = strategy_id, model, features."""
    now, missing = require(features, names)
    before, missing_prev = require(previous, previous_names, prefix="previous.")
    if features is None:
        return now, before, hold(symbol, "HOLD: no feature row for this symbol", **ctx)
    if missing or missing_prev:
        return now, before, hold(symbol, missing_reason(missing + missing_prev), **ctx)
    if not previous_is_older(features, previous):
        return now, before, hold(symbol, "HOLD: previous session row is not older than the latest session", **ctx)
    if now["atr_14"] <= 0:
        return now, before, hold(symbol, f"HOLD: atr_14={now['atr_14']} is not positive", **ctx)
    return now, before, None
