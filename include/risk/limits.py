"""Risk limits: frozen, conservative defaults; a strategy's YAML overrides them field by field."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RiskLimits(BaseModel):
    """Dollar limits (never share counts: quantities are derived from dollars and the price)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_confidence: float = Field(0.7, ge=0.0, le=1.0, description="signals below this are vetoed")
    max_position_notional: float = Field(10_000.0, gt=0, description="max $ held in one symbol after the order")
    max_order_notional: float = Field(2_500.0, gt=0, description="max $ of one order (quantity x limit price)")
    max_orders_per_run: int = Field(5, ge=0, description="approved orders per strategy run")
    max_orders_per_day: int = Field(20, ge=0, description="orders per day, counting those already placed")
    max_gross_exposure: float = Field(50_000.0, gt=0, description="max $ of all long positions after the order")
    max_gross_leverage: float = Field(1.0, gt=0, description="max gross exposure / net liquidation (when known)")
    price_collar_pct: float = Field(0.02, gt=0, le=0.2, description="max |price - last| / last, as a fraction")
    max_quote_age_seconds: float = Field(
        120.0, gt=0, description="a quote (IBKR's _updated) older than this is no price: risk and submission veto"
    )
    limit_offset_pct: float = Field(
        0.002, ge=0, le=0.2, description="limit price distance from last (marketable limit), within the collar"
    )

    @model_validator(mode="after")
    def _consistent(self) -> RiskLimits:
        if self.max_order_notional > self.max_position_notional:
            raise ValueError(
                f"max_order_notional ({self.max_order_notional}) must not exceed "
                f"max_position_notional ({self.max_position_notional})"
            )
        if self.max_position_notional > self.max_gross_exposure:
            raise ValueError(
                f"max_position_notional ({self.max_position_notional}) must not exceed "
                f"max_gross_exposure ({self.max_gross_exposure})"
            )
        if self.limit_offset_pct > self.price_collar_pct:
            raise ValueError(
                f"limit_offset_pct ({self.limit_offset_pct}) must be within price_collar_pct ({self.price_collar_pct})"
            )
        return self
