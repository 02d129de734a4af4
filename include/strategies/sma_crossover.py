"""Moving-average crossover: BUY when the fast average crosses above the slow one between the previous and the
latest session, SELL when it crosses below, HOLD otherwise. Confidence formula: docs/strategies.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from include.config.models import SmaCrossoverParams
from include.strategies.base import Features, Signal, crossing_inputs, hold, make_signal, scaled_confidence

MODEL = "sma_crossover"


def sma_crossover_signal(symbol: str, features: Features | None, previous: Features | None,
                         params: SmaCrossoverParams, strategy_id: int) -> Signal:
    fast, slow = params.fast, params.slow
    ctx = {"strategy_id": strategy_id, "model": MODEL, "features": features}
    now, before, refused = crossing_inputs(symbol, features, previous, (fast, slow, "atr_14", "close"), (fast, slow),
                                           ctx)
    if refused:
        return refused

    gap, prev_gap = now[fast] - now[slow], before[fast] - before[slow]
    inputs = {**now, f"previous_{fast}": before[fast], f"previous_{slow}": before[slow]}
    gap_atr = abs(gap) / now["atr_14"]
    if prev_gap <= 0 < gap:
        action, word = "BUY", "above"
    elif prev_gap >= 0 > gap:
        action, word = "SELL", "below"
    else:
        side = "above" if gap > 0 else "below" if gap < 0 else "equal to"
        return hold(symbol, f"HOLD: no crossover; {fast} stays {side} {slow} (gap {gap:+.4f}, previous "
                    f"{prev_gap:+.4f})", inputs=inputs, **ctx)
    confidence = scaled_confidence(gap_atr, params.full_confidence_atr)
    rationale = (f"{fast} crossed {word} {slow}: gap {prev_gap:+.4f} -> {gap:+.4f} "
                 f"({gap_atr:.3f} ATR; full confidence at {params.full_confidence_atr} ATR)")
    return make_signal(symbol, action, confidence, rationale, inputs=inputs, **ctx)


@dataclass(frozen=True)
class SmaCrossoverStrategy:
    strategy_id: int
    params: SmaCrossoverParams
    model: str = MODEL

    def generate(self, symbol: str, features: Features | None, previous: Features | None = None,
                 chart_png: bytes | None = None) -> Signal:
        return sma_crossover_signal(symbol, features, previous, self.params, self.strategy_id)
