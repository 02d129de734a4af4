"""RSI mean reversion: BUY when RSI-14 is below ``oversold``, SELL when above ``overbought``, else HOLD.

Confidence formula: docs/strategies.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from include.config.models import RsiMeanReversionParams
from include.strategies.base import Features, Signal, hold, make_signal, missing_reason, require, scaled_confidence

MODEL = "rsi_mean_reversion"


def rsi_mean_reversion_signal(symbol: str, features: Features | None, params: RsiMeanReversionParams,
                              strategy_id: int) -> Signal:
    values, missing = require(features, ("rsi_14", "close"))
    ctx = {"strategy_id": strategy_id, "model": MODEL, "features": features}
    if features is None:
        return hold(symbol, "HOLD: no feature row for this symbol", **ctx)
    if missing:
        return hold(symbol, missing_reason(missing), **ctx)
    rsi = values["rsi_14"]
    full = params.full_confidence_distance
    if rsi < params.oversold:
        confidence = scaled_confidence(params.oversold - rsi, full)
        return make_signal(symbol, "BUY", confidence, f"RSI-14 {rsi:.2f} below oversold {params.oversold:g} "
                           f"by {params.oversold - rsi:.2f} points (full confidence at {full:g})",
                           inputs=values, **ctx)
    if rsi > params.overbought:
        confidence = scaled_confidence(rsi - params.overbought, full)
        return make_signal(symbol, "SELL", confidence, f"RSI-14 {rsi:.2f} above overbought {params.overbought:g} "
                           f"by {rsi - params.overbought:.2f} points (full confidence at {full:g})",
                           inputs=values, **ctx)
    return hold(symbol, f"HOLD: RSI-14 {rsi:.2f} within [{params.oversold:g}, {params.overbought:g}]",
                inputs=values, **ctx)


@dataclass(frozen=True)
class RsiMeanReversionStrategy:
    strategy_id: int
    params: RsiMeanReversionParams
    model: str = MODEL

    def generate(self, symbol: str, features: Features | None, previous: Features | None = None,
                 chart_png: bytes | None = None) -> Signal:
        return rsi_mean_reversion_signal(symbol, features, self.params, self.strategy_id)
