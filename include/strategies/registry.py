"""Registry: signal model name -> strategy class; builds a strategy from its config and runs it over symbols."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from include.config.models import SIGNAL_MODELS, StrategyConfig
from include.strategies.base import Features, Signal, Strategy, hold
from include.strategies.llm_signal import LLMStrategy
from include.strategies.macd_momentum import MacdMomentumStrategy
from include.strategies.ml_signal import MLSignalStrategy
from include.strategies.rsi_mean_reversion import RsiMeanReversionStrategy
from include.strategies.sma_crossover import SmaCrossoverStrategy

if TYPE_CHECKING:
    from include.llm.client import ChatClient
    from include.llm.connection import LLMEndpoint

RULE_STRATEGIES: dict[str, Any] = {
    "sma_crossover": SmaCrossoverStrategy,
    "rsi_mean_reversion": RsiMeanReversionStrategy,
    "macd_momentum": MacdMomentumStrategy,
}
REGISTRY: dict[str, Any] = {**RULE_STRATEGIES, "llm": LLMStrategy, "ml": MLSignalStrategy}
if set(REGISTRY) != set(SIGNAL_MODELS):  # a model added to the config must get a strategy, and vice versa
    raise RuntimeError(f"signal models {sorted(SIGNAL_MODELS)} != registry {sorted(REGISTRY)}")


def build_strategy(config: StrategyConfig, *, llm_endpoint: LLMEndpoint | None = None,
                   llm_client: ChatClient | None = None) -> Strategy:
    """The strategy for ``config``. An LLM strategy needs ``llm_endpoint`` (from the Airflow connection named in
    its config) or a ready ``llm_client``; there is no default endpoint."""
    params = config.signal
    if params.model in RULE_STRATEGIES:
        return RULE_STRATEGIES[params.model](strategy_id=config.id, params=params)
    if params.model == "ml":  # the registered model loads on first use (validate_environment checks it exists)
        return MLSignalStrategy(strategy_id=config.id, params=params)
    if llm_client is not None:
        return LLMStrategy(strategy_id=config.id, params=params, client=llm_client)
    if llm_endpoint is None:
        raise ValueError(f"strategy {config.id} ({config.name}) uses an LLM: pass llm_endpoint "
                         f"(include.llm.connection.load_endpoint({params.connection_id!r})) or llm_client")
    client = llm_endpoint.client(timeout=params.timeout_seconds, max_retries=params.max_retries)
    return LLMStrategy(strategy_id=config.id, params=params, client=client, vision_supported=llm_endpoint.vision)


def generate_signals(strategy: Strategy, symbols: Iterable[str], latest: Mapping[str, Features],
                     previous: Mapping[str, Features] | None = None,
                     charts: Mapping[str, bytes] | None = None) -> list[Signal]:
    """One signal per symbol, in order. A symbol without features, or a strategy bug, gives HOLD with the
    reason; this never raises and never turns an error into BUY/SELL."""
    signals = []
    for symbol in symbols:
        row = latest.get(symbol)
        try:
            signal = strategy.generate(symbol, row, (previous or {}).get(symbol), (charts or {}).get(symbol))
        except Exception as exc:  # a strategy bug must cost one HOLD, not the run
            signal = hold(symbol, f"HOLD: strategy error {type(exc).__name__}: {exc}",
                          strategy_id=strategy.strategy_id, model=strategy.model, features=row)
        signals.append(signal)
    return signals
