"""Builders for risk tests: signals and a permissive context that each test tightens."""

from __future__ import annotations

from typing import Any

from include.risk.engine import build_context
from include.risk.models import RiskContext
from include.strategies.base import Signal


def signal(symbol: str = "TSLA", action: str = "BUY", confidence: float = 0.8, price: float | None = 250.0,
           strategy_id: int = 1) -> Signal:
    return Signal(symbol=symbol, action=action, confidence=confidence, rationale=f"test {action}",
                  strategy_id=strategy_id, model="test", price_reference=price,
                  price_source="close" if price else None)


def context_kwargs(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "mode": "paper", "account_id": "DU1234567", "trading_state": "ACTIVE", "positions": {},
        "last_prices": {"TSLA": 250.0, "NVDA": 120.0, "AAPL": 200.0}, "orders_today": 0,
        "verdicts": {"TSLA": ("pass", []), "NVDA": ("pass", []), "AAPL": ("pass", [])}, "market_open": True,
        "net_liquidation": 100_000.0, "gross_position_value": 0.0,
    }  # fmt: skip
    return base | overrides


def context(**overrides: Any) -> RiskContext:
    return build_context(**context_kwargs(**overrides))
