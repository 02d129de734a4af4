"""ML strategy: the registered direction classifier (``models:/<name>@champion``) scores the latest features.

BUY/SELL when P(up)/P(down) >= ``threshold``, else HOLD; confidence and missing-model rules: docs/strategies.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from include.config.models import MLParams
from include.strategies.base import Features, Signal, hold, make_signal, missing_reason

if TYPE_CHECKING:
    from include.ml.registry import LoadedModel

MODEL = "ml"


def require_model(params: MLParams, *, tracking_uri: str | None = None) -> LoadedModel:
    """Load the model the strategy serves; raises ``ModelNotFoundError`` naming the alias when there is none."""
    from include.ml.registry import load_champion

    return load_champion(params.registered_model, params.alias, tracking_uri=tracking_uri)


@dataclass
class MLSignalStrategy:
    strategy_id: int
    params: MLParams
    loaded: LoadedModel | None = None  # injected, or loaded on first use
    model: str = MODEL

    def _model(self) -> LoadedModel:
        if self.loaded is None:
            self.loaded = require_model(self.params)
        return self.loaded

    def generate(
        self, symbol: str, features: Features | None, previous: Features | None = None, chart_png: bytes | None = None
    ) -> Signal:
        from include.ml.features import features_from_row

        ctx: dict[str, Any] = {"strategy_id": self.strategy_id, "model": MODEL, "features": features}
        if features is None:
            return hold(symbol, "HOLD: no feature row for this symbol", **ctx)
        X, missing = features_from_row(features)
        if missing:
            return hold(symbol, missing_reason(missing), **ctx)
        loaded = self._model()
        p_up = float(loaded.prob_up(X)[0])
        p_down = 1.0 - p_up
        inputs = {**{k: float(v) for k, v in X.iloc[0].items()}, "p_up": round(p_up, 6),
                  "model_version": loaded.version}  # fmt: skip
        where = f"{loaded.label} ({self.params.alias})"
        threshold = self.params.threshold
        if p_up >= threshold:
            action, confidence = "BUY", p_up
        elif p_down >= threshold:
            action, confidence = "SELL", p_down
        else:
            return hold(
                symbol,
                f"HOLD: {where} P(up)={p_up:.4f}, P(down)={p_down:.4f}, both below the threshold {threshold}",
                inputs=inputs,
                **ctx,
            )
        word = "up" if action == "BUY" else "down"
        rationale = f"{where}: P({word})={confidence:.4f} >= threshold {threshold} for the next session"
        return make_signal(symbol, action, round(confidence, 6), rationale, inputs=inputs, **ctx)
