"""No look-ahead: the backtest on the history cut at session k decides and fills exactly what the full run does
up to k (signals at a close only see rows up to that close)."""

import pytest

from include.backtest.engine import run_backtest
from include.config import get_strategy


@pytest.mark.parametrize("strategy_id", [1, 2, 3])
def test_truncating_the_future_does_not_change_the_past(mart_history, strategy_id):
    config = get_strategy(strategy_id)
    full = run_backtest(config, mart_history)
    assert full.signals and full.fills
    for k in (400, 550):
        cut = mart_history.dates[k]
        part = run_backtest(config, mart_history.truncate(cut))
        assert part.dates == mart_history.dates[: k + 1]
        assert part.signals == [s for s in full.signals if s["session_date"] <= cut]
        assert part.fills == [f for f in full.fills if f["session_date"] <= cut]
        assert part.equity == full.equity[: k + 1]
        assert part.protection_events == [e for e in full.protection_events if e["session_date"] <= cut]
        # and the full run really has decisions after the cut, so the comparison is not vacuous
        assert any(s["session_date"] > cut for s in full.signals)


def test_a_signal_fills_at_the_next_sessions_open(mart_history):
    result = run_backtest(get_strategy(2), mart_history)
    dates = mart_history.dates
    for fill in result.fills:
        assert dates.index(fill["session_date"]) == dates.index(fill["signal_date"]) + 1
