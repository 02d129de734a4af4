"""LLM strategy: features (and optionally the chart PNG) -> registered prompt -> chat model -> validated JSON.
Never raises: invalid, late or missing output is HOLD. Signal.trace, registry and tracing: docs/strategies.md.
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
    from include.llm.prompt_registry import RegisteredPrompt
    from include.llm.prompts import PromptTemplate
    from include.llm.tracing import DecisionTrace, LLMTracking

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


def _prompt_record(prompt: Any) -> dict[str, Any]:
    registered = hasattr(prompt, "uri")  # a RegisteredPrompt (MLflow registry) or a PromptTemplate (repo file)
    if registered:
        return {"prompt_id": prompt.name, "prompt_version": prompt.label, "prompt_uri": prompt.uri,
                "prompt_alias": prompt.alias}
    return {"prompt_id": prompt.id, "prompt_version": prompt.version}


def llm_signal(symbol: str, features: Features | None, previous: Features | None, *, client: ChatClient,
               params: LLMParams, strategy_id: int, chart_png: bytes | None = None,
               vision_supported: bool = True, prompt: RegisteredPrompt | PromptTemplate | None = None,
               tracking: LLMTracking | None = None) -> Signal:
    """One decision; ``prompt`` defaults to the repo file of ``params.prompt``. With ``tracking`` the decision is an
    MLflow trace whose id is on the signal (``trace_id``) and in ``Signal.trace``."""
    from include.llm.prompts import load_prompt
    from include.llm.tracing import DecisionTrace

    prompt = prompt or load_prompt(params.prompt)
    record = _prompt_record(prompt)
    session = session_of(features)
    inputs = {"symbol": symbol, "session_date": str(session) if session else None, **record}
    tags = {"symbol": symbol, "strategy_id": strategy_id, "session_date": session, **record}
    registered = prompt if hasattr(prompt, "uri") else None
    with DecisionTrace(tracking, symbol, inputs, tags, registered) as traced:  # type: ignore[arg-type]
        signal = _decide(symbol, features, previous, client, params, strategy_id, chart_png, vision_supported,
                         prompt, record, traced)
        decision = {"action": signal.action, "confidence": signal.confidence, "rationale": signal.rationale}
        traced.finish({**decision, "hold_reason": signal.rationale} if signal.action == "HOLD" else decision)
    if traced.trace_id is None:
        return signal
    return signal.model_copy(update={"trace_id": traced.trace_id,
                                     "trace": {**(signal.trace or {}), "trace_id": traced.trace_id}})


def _decide(symbol: str, features: Features | None, previous: Features | None, client: ChatClient,
            params: LLMParams, strategy_id: int, chart_png: bytes | None, vision_supported: bool, prompt: Any,
            record: dict[str, Any], traced: DecisionTrace) -> Signal:
    from include.llm.client import LLMError
    from include.llm.output import parse_signal_output

    ctx = {"strategy_id": strategy_id, "model": MODEL, "features": features}
    trace: dict[str, Any] = {**record, "called": False, "base_url": client.base_url, "requested_model": client.model}
    if features is None:
        return hold(symbol, "HOLD: no feature row for this symbol", trace=trace, **ctx)
    _, missing = require(features, params.required_features)
    if missing:
        return hold(symbol, missing_reason(missing), trace=trace, **ctx)

    sent = _values(features, FEATURE_COLUMNS)
    price, source = price_reference(features)
    image = chart_png if (params.vision and vision_supported and chart_png) else None
    messages = prompt.render({
        "symbol": symbol,
        "session_date": str(session_of(features) or "unknown"),
        "price_reference": price,
        "price_source": source,
        "features_json": json.dumps(sent, indent=1),
        "previous_json": json.dumps(_values(previous, PREVIOUS_COLUMNS), indent=1),
    }, image_png=image)  # fmt: skip
    trace.update(called=True, vision=image is not None, messages=_loggable(messages))
    request = {"model": client.model, "temperature": params.temperature, "max_tokens": params.max_tokens,
               "json_mode": params.json_mode}
    try:
        result = client.complete(messages, temperature=params.temperature, max_tokens=params.max_tokens,
                                 json_mode=params.json_mode)
    except LLMError as exc:
        traced.chat(trace["messages"], request, error=exc)
        trace.update(error=str(exc), error_type=type(exc).__name__, attempts=exc.attempts, latency_s=exc.latency_s,
                     status_code=exc.status_code, raw_response=exc.raw)
        return hold(symbol, f"HOLD: LLM call failed: {exc}", inputs=sent, trace=trace, **ctx)
    traced.chat(trace["messages"], request, result)
    trace.update(model=result.model, raw_response=result.raw, content=result.content, latency_s=result.latency_s,
                 attempts=result.attempts, usage=result.usage, finish_reason=result.finish_reason)
    output, error = parse_signal_output(result.content)
    if output is None:
        trace["error"] = error
        return hold(symbol, f"HOLD: invalid LLM output: {error}", inputs=sent, trace=trace, **ctx)
    return make_signal(symbol, output.action, output.confidence, output.rationale, inputs=sent, trace=trace, **ctx)


AUTO = "auto"  # LLMStrategy.tracking: discover the store and the DAG run on first use


@dataclass(frozen=True)
class LLMStrategy:
    strategy_id: int
    params: LLMParams
    client: ChatClient = field(repr=False)
    vision_supported: bool = True
    model: str = MODEL
    # AUTO: the configured MLflow store and the running task's DAG run (none configured: repo prompt, no traces);
    # None: never; or an explicit LLMTracking.
    tracking: LLMTracking | str | None = AUTO
    prompt: RegisteredPrompt | None = None  # a given registered version (evaluation) instead of the alias's
    _state: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def _setup(self) -> tuple[RegisteredPrompt | PromptTemplate | None, LLMTracking | None]:
        """Once per strategy object: the tracking, and the prompt version its alias serves (registered on first
        use). A registry failure raises: ``generate_signals`` turns it into HOLD for every symbol."""
        if "tracking" not in self._state:
            tracking = self.tracking
            if tracking == AUTO:
                from include.llm.tracing import LLMTracking

                tracking = LLMTracking.for_strategy(_strategy_name(self.strategy_id))
            prompt = self.prompt
            if tracking is not None:
                if prompt is None:
                    from include.llm.prompt_registry import resolve

                    prompt = resolve(self.params.prompt, self.params.prompt_alias, tracking.client)
                tracking.record_prompt(prompt)
            self._state.update(tracking=tracking, prompt=prompt)
        return self._state["prompt"], self._state["tracking"]

    def generate(self, symbol: str, features: Features | None, previous: Features | None = None,
                 chart_png: bytes | None = None) -> Signal:
        prompt, tracking = self._setup()
        return llm_signal(symbol, features, previous, client=self.client, params=self.params,
                          strategy_id=self.strategy_id, chart_png=chart_png, vision_supported=self.vision_supported,
                          prompt=prompt, tracking=tracking)

    def close(self) -> None:
        """Release the HTTP connection pool and write out pending traces (call when the run's signals are done:
        a task process may end without running MLflow's exit hook)."""
        self.client.close()
        if self._state.get("tracking") is not None:
            from include.llm.tracing import flush_traces

            flush_traces()


def _strategy_name(strategy_id: int) -> str:
    from include.config import get_strategy

    try:
        return get_strategy(strategy_id).name
    except (LookupError, ValueError):
        return f"llm-{strategy_id}"
