"""``python -m bench`` runs its benchmarks in one process: what one sets in the environment must not reach the next
(ingestion's unpaced client, IBKR_RATE_PER_SEC=0, once made ``make bench``'s trading runs draw 429s)."""

from __future__ import annotations

import os

import pytest


def test_a_benchmarks_environment_does_not_reach_the_next(monkeypatch):
    from bench import __main__ as runner

    seen: list[str | None] = []

    def unpaced() -> None:
        os.environ["IBKR_RATE_PER_SEC"] = "0"

    def trading() -> None:
        seen.append(os.environ.get("IBKR_RATE_PER_SEC"))

    monkeypatch.setattr(runner, "BENCHMARKS", {"ingestion": unpaced, "trading": trading})
    monkeypatch.delenv("IBKR_RATE_PER_SEC", raising=False)
    assert runner.main(["ingestion", "trading"]) == 0
    assert seen == [None] and "IBKR_RATE_PER_SEC" not in os.environ


def test_the_trading_bench_names_the_chain_before_the_orders_and_its_cheapest_cost():
    """P8 under a scheduler: the longest chain ending in place_orders (not a shorter branch) and the earliest the
    orders could start with every task as cheap as the run's cheapest and every hand-off the median one."""
    from bench.trading import _structural_floor

    run = {"upstream": {"b": ["a"], "c": ["b"], "side": ["a"], "place_orders": ["c", "side"]},
           "starts": {"a": 0.5, "b": 1.5, "side": 1.6, "c": 2.6, "place_orders": 4.0},
           "ends": {"a": 1.25, "b": 2.5, "side": 1.9, "c": 3.8, "place_orders": 14.0}}
    chain, least = _structural_floor(run)
    assert chain == ["a", "b", "c", "place_orders"]
    # task processes: a 0.75, b 1.0, side 0.3, c 1.2; hand-offs: b 0.25, side 0.35, c 0.1, place_orders 0.2
    assert least == pytest.approx({"task": 0.3, "handoff": 0.25, "first": 0.5, "start": 0.5 + 3 * (0.3 + 0.25)})
