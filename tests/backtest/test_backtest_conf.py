"""start_parent refuses, before any MLflow run, strategies a backtest cannot score honestly."""

from __future__ import annotations

import pytest

from include.backtest.tasks import BacktestConfError, start_parent
from include.config import get_strategy


@pytest.mark.parametrize(("strategy_id", "message"), [(4, "asks an LLM"), (5, "a backtest over its training history")])
def test_llm_and_ml_strategies_are_refused(strategy_id: int, message: str) -> None:
    assert get_strategy(strategy_id).signal.model in {"llm", "ml"}
    with pytest.raises(BacktestConfError, match=message):
        start_parent({"params": {"strategy_id": strategy_id, "grid": {}}})


def test_unknown_strategy_is_a_conf_error() -> None:
    with pytest.raises(BacktestConfError, match="strategy_id 999"):
        start_parent({"params": {"strategy_id": 999, "grid": {}}})
