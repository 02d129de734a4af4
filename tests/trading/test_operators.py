"""The guide's operators: their documented parameters, and risk limits tightened (never loosened) per task."""

from __future__ import annotations

import os

import pytest

from include.config import get_strategy
from include.trading.operators import (
    IBKRMarketDataOperator,
    LLMSignalGeneratorOperator,
    OrderPlacementOperator,
    tightened_limits,
)


def test_market_data_operator_parameters():
    op = IBKRMarketDataOperator(task_id="fetch_market_data", symbols=["AAPL", "GOOGL"], strategy_id=1,
                                track_mlflow=False)
    assert (op.symbols, op.fields, op.strategy_id, op.track_mlflow) == (["AAPL", "GOOGL"], ("last", "bid", "ask"),
                                                                        1, False)
    assert op.pool == "ibkr_api" and "symbols" in op.template_fields  # symbols may come from "{{ params.symbols }}"
    assert IBKRMarketDataOperator(task_id="m", fields=["last", "quote_at"]).fields == ("last", "quote_at")
    with pytest.raises(ValueError, match="unknown field"):
        IBKRMarketDataOperator(task_id="m", fields=["price"])
    with pytest.raises(ValueError, match="strategy_id must be a positive integer"):
        IBKRMarketDataOperator(task_id="m", strategy_id="1")


def test_signal_operator_parameters():
    op = LLMSignalGeneratorOperator(task_id="generate_signals", strategy_id=4, track_mlflow=True)
    assert (op.strategy_id, op.track_mlflow, op.run_task_id) == (4, True, "start_mlflow_run")


def test_order_operator_parameters():
    op = OrderPlacementOperator(task_id="place_orders", strategy_id=1)
    assert (op.min_confidence, op.max_position_size, op.dry_run) == (0.7, None, True)  # the guide's defaults
    assert op.pool == "ibkr_orders" and op._dry() is True
    op = OrderPlacementOperator(task_id="p", min_confidence=0.9, max_position_size=5000, dry_run="{{ params.dry_run }}",
                                pool="trading_pool")
    assert op.pool == "trading_pool" and "dry_run" in op.template_fields
    op.dry_run = "False"  # as rendered from the params
    assert op._dry() is False
    with pytest.raises(ValueError, match="min_confidence"):
        OrderPlacementOperator(task_id="p", min_confidence=1.5)
    with pytest.raises(ValueError, match="max_position_size"):
        OrderPlacementOperator(task_id="p", max_position_size=0)


def test_limits_are_tightened_and_passed_not_written_anywhere(monkeypatch):
    monkeypatch.delenv("STRATEGIES_FILE", raising=False)
    own = get_strategy(1).risk
    limits, changed = tightened_limits(1, min_confidence=0.95, max_position_size=1000)
    assert changed == {"min_confidence": 0.95, "max_position_notional": 1000,
                       "max_order_notional": min(own.max_order_notional, 1000)}
    assert limits.min_confidence == 0.95 and limits.max_position_notional == 1000
    assert limits.max_order_notional <= 1000 and limits.price_collar_pct == own.price_collar_pct
    assert "STRATEGIES_FILE" not in os.environ and get_strategy(1).risk == own  # the strategy itself is unchanged


def test_looser_limits_change_nothing(monkeypatch, tmp_path):
    custom = tmp_path / "strategies.yaml"
    custom.write_text("version: 1\nstrategies:\n  - {id: 9, name: strict_one, symbols: [TSLA], schedule: '@daily',"
                      " signal: {model: rsi_mean_reversion}, risk: {min_confidence: 0.8, max_position_notional: 3000,"
                      " max_order_notional: 1000}}\n")
    monkeypatch.setenv("STRATEGIES_FILE", str(custom))
    limits, changed = tightened_limits(9, min_confidence=0.7, max_position_size=9000)
    assert changed == {} and limits == get_strategy(9).risk  # the operator's defaults never loosen a strategy
    limits, changed = tightened_limits(9, min_confidence=0.9, max_position_size=None)
    assert changed == {"min_confidence": 0.9} and limits.max_position_notional == 3000
