"""MACD momentum: BUY when the MACD histogram turns positive (MACD crosses above its signal line), SELL when it
turns negative, HOLD otherwise. ``require_zero_line`` and the confidence formula: docs/strategies.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from include.config.models import MacdMomentumParams
from include.strategies.base import Features, Signal, crossing_inputs, hold, make_signal, scaled_confidence

MODEL = "macd_momentum"


def macd_momentum_signal(symbol: str, features: Features | None, previous: Features | None,
                         params: MacdMomentumParams, strategy_id: int) -> Signal:
    ctx = {"strategy_id": strategy_id, "model": MODEL, "features": features}
    now, before, refused = crossing_inputs(symbol, features, previous,
                                           ("macd", "macd_signal", "macd_hist", "atr_14", "close"), ("macd_hist",), ctx)
    if refused:
        return refused

    hist, prev_hist, macd = now["macd_hist"], before["macd_hist"], now["macd"]
    inputs = {**now, "previous_macd_hist": prev_hist}
    if prev_hist <= 0 < hist:
        action, word = "BUY", "above"
        blocked = params.require_zero_line and macd <= 0
    elif prev_hist >= 0 > hist:
        action, word = "SELL", "below"
        blocked = params.require_zero_line and macd >= 0
    else:
        return hold(symbol, f"HOLD: no MACD crossover (histogram {prev_hist:+.4f} -> {hist:+.4f})",
                    inputs=inputs, **ctx)
    if blocked:
        return hold(symbol, f"HOLD: MACD crossed {word} its signal line but MACD {macd:+.4f} is on the wrong "
                    "side of zero (require_zero_line)", inputs=inputs, **ctx)
    hist_atr = abs(hist) / now["atr_14"]
    confidence = scaled_confidence(hist_atr, params.full_confidence_atr)
    rationale = (f"MACD crossed {word} its signal line: histogram {prev_hist:+.4f} -> {hist:+.4f} "
                 f"({hist_atr:.3f} ATR; full confidence at {params.full_confidence_atr} ATR), MACD {macd:+.4f}")
    return make_signal(symbol, action, confidence, rationale, inputs=inputs, **ctx)


@dataclass(frozen=True)
class MacdMomentumStrategy:
    strategy_id: int
    params: MacdMomentumParams
    model: str = MODEL

    def generate(self, symbol: str, features: Features | None, previous: Features | None = None,
                 chart_png: bytes | None = None) -> Signal:
        return macd_momentum_signal(symbol, features, previous, self.params, self.strategy_id)
