"""``python -m bench`` runs its benchmarks in one process: what one sets in the environment must not reach the next
(ingestion's unpaced client, IBKR_RATE_PER_SEC=0, once made ``make bench``'s trading runs draw 429s)."""

from __future__ import annotations

import os


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
