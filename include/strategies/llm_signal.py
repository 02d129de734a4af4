"""LLM strategy: features (and optionally the chart PNG) -> versioned prompt -> chat model -> validated JSON.

Invalid, late or missing output is HOLD with the reason in the rationale and the whole call (prompt version,
messages, raw response, model, latency, usage, attempts, error) in ``Signal.trace`` for MLflow. Never raises.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from include.config.models import FEATURE_COLUMNS, LLMParams
from include.strategies.base import (
    Features,
    Signal,
    hold,
    make_signal,
    missing_reason,
    price_reference,
    require,
    session_of,
    to_float,
)

if TYPE_CHECKING:
    from include.llm.client import ChatClient

MODEL = "llm"
PREVIOUS_COLUMNS = ("close", "sma_20", "sma_50", "sma_200", "ema_12", "ema_26", "macd", "macd_signal", "macd_hist",
                    "rsi_14", "bb_upper", "bb_middle", "bb_lower", "atr_14")  # fmt: skip


def _round(value: float | None) -> float | None:
    if value is None or value == 0:
        return value
    digits = 6 - math.floor(math.log10(abs(value)))  # 7 significant digits: readable, nothing lost that matters
    return round(value, max(digits, 0))


def _values(features: Features | None, names: tuple[str, ...]) -> dict[str, float | None]:
    return {name: _round(to_float(features.get(name))) for name in names} if features else {}


def _loggable(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages for the trace, with the base64 image replaced by its size (the PNG is logged as a chart)."""
    out = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            content = [
                {"type": "image_url", "image_url": f"<image/png base64, {len(p['image_url']['url'])} chars>"}
                if p.get("type") == "image_url" else p
                for p in content
            ]
        out.append({"role": message["role"], "content": content})
    return out


def llm_signal(symbol: str, features: Features | None, previous: Features | None, *, client: ChatClient,
               params: LLMParams, strategy_id: int, chart_png: bytes | None = None,
               vision_supported: bool = True) -> Signal:
    from include.llm.client import LLMError
    from include.llm.output import parse_signal_output
    from include.llm.prompts import load_prompt

    ctx = {"strategy_id": strategy_id, "model": MODEL, "features": features}
    template = load_prompt(params.prompt)
    trace: dict[str, Any] = {"prompt_id": template.id, "prompt_version": template.version, "called": False,
                             "base_url": client.base_url, "requested_model": client.model}
    if features is None:
        return hold(symbol, "HOLD: no feature row for this symbol", trace=trace, **ctx)
    _, missing = require(features, params.required_features)
    if missing:
        return hold(symbol, missing_reason(missing), trace=trace, **ctx)

    sent = _values(features, FEATURE_COLUMNS)
    price, source = price_reference(features)
    image = chart_png if (params.vision and vision_supported and chart_png) else None
    messages = template.render({
        "symbol": symbol,
        "session_date": str(session_of(features) or "unknown"),
        "price_reference": price,
        "price_source": source,
        "features_json": json.dumps(sent, indent=1),
        "previous_json": json.dumps(_values(previous, PREVIOUS_COLUMNS), indent=1),
    }, image_png=image)  # fmt: skip
    trace.update(called=True, vision=image is not None, messages=_loggable(messages))
    try:
        result = client.complete(messages, temperature=params.temperature, max_tokens=params.max_tokens,
                                 json_mode=params.json_mode)
    except LLMError as exc:
        trace.update(error=str(exc), error_type=type(exc).__name__, attempts=exc.attempts, latency_s=exc.latency_s,
                     status_code=exc.status_code, raw_response=exc.raw)
        return hold(symbol, f"HOLD: LLM call failed: {exc}", inputs=sent, trace=trace, **ctx)
    trace.update(model=result.model, raw_response=result.raw, content=result.content, latency_s=result.latency_s,
                 attempts=result.attempts, usage=result.usage, finish_reason=result.finish_reason)
    output, error = parse_signal_output(result.content)
    if output is None:
        trace["error"] = error
        return hold(symbol, f"HOLD: invalid LLM output: {error}", inputs=sent, trace=trace, **ctx)
    return make_signal(symbol, output.action, output.confidence, output.rationale, inputs=sent, trace=trace, **ctx)


@dataclass(frozen=True)
class LLMStrategy:
    strategy_id: int
    params: LLMParams
    client: ChatClient = field(repr=False)
    vision_supported: bool = True
    model: str = MODEL

    def generate(self, symbol: str, features: Features | None, previous: Features | None = None,
                 chart_png: bytes | None = None) -> Signal:
        return llm_signal(symbol, features, previous, client=self.client, params=self.params,
                          strategy_id=self.strategy_id, chart_png=chart_png, vision_supported=self.vision_supported)

    def close(self) -> None:
        """Release the HTTP connection pool (call when the run's signals are done)."""
        self.client.close()
