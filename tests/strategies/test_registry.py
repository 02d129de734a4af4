"""Registry and ``generate_signals``: every model is registered, and junk never becomes BUY/SELL or an exception."""

from __future__ import annotations

import math
from datetime import date

import pytest

from include.config import SIGNAL_MODELS, get_strategy, load_strategies
from include.strategies.base import Signal
from include.strategies.registry import REGISTRY, build_strategy, generate_signals

RULE_IDS = [c.id for c in load_strategies() if c.signal.model != "llm"]


def test_registry_matches_the_config_models():
    assert set(REGISTRY) == set(SIGNAL_MODELS)


def test_llm_strategy_needs_an_endpoint():
    llm = next(c for c in load_strategies() if c.signal.model == "llm")
    with pytest.raises(ValueError, match="uses an LLM: pass llm_endpoint"):
        build_strategy(llm)


@pytest.mark.parametrize("strategy_id", RULE_IDS)
def test_one_signal_per_symbol_in_order_and_hold_without_features(strategy_id):
    strategy = build_strategy(get_strategy(strategy_id))
    signals = generate_signals(strategy, ["TSLA", "NVDA"], latest={}, previous={})
    assert [s.symbol for s in signals] == ["TSLA", "NVDA"]
    assert all(s.action == "HOLD" and "no feature row" in s.rationale for s in signals)
    assert all(s.strategy_id == strategy_id for s in signals)


JUNK = [None, math.nan, math.inf, -math.inf, "12.5", "", [], {}, True, object()]


def _junk_id(value: object) -> str:  # stable across processes (test ids must match between xdist workers)
    return "object()" if type(value) is object else repr(value)


@pytest.mark.parametrize("strategy_id", RULE_IDS)
@pytest.mark.parametrize("junk", JUNK, ids=_junk_id)
def test_junk_values_are_hold(strategy_id, junk):
    names = ("close", "sma_20", "sma_50", "ema_12", "ema_26", "rsi_14", "macd", "macd_signal", "macd_hist", "atr_14")
    latest = {"TSLA": {"symbol": "TSLA", "session_date": date(2025, 3, 4), **dict.fromkeys(names, junk)}}
    previous = {"TSLA": {"symbol": "TSLA", "session_date": date(2025, 3, 3), **dict.fromkeys(names, junk)}}
    (signal,) = generate_signals(build_strategy(get_strategy(strategy_id)), ["TSLA"], latest, previous)
    assert (signal.action, signal.confidence) == ("HOLD", 0.0)


class _Broken:
    strategy_id, model = 99, "broken"

    def generate(self, symbol, features, previous=None, chart_png=None) -> Signal:
        raise ZeroDivisionError("boom")


def test_a_strategy_bug_costs_one_hold_not_the_run():
    (signal,) = generate_signals(_Broken(), ["TSLA"], {"TSLA": {"close": 10.0}})
    assert (signal.action, signal.strategy_id) == ("HOLD", 99)
    assert signal.rationale == "HOLD: strategy error ZeroDivisionError: boom"
    assert signal.price_reference == 10.0
