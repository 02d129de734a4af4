"""Walk-forward: window planning, stitching, and no look-ahead (out-of-sample bars never change a window's
parameter choice, while in-sample bars do)."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from include.backtest.engine import History
from include.backtest.walkforward import (
    WalkForwardSpec,
    Window,
    choose,
    plan_windows,
    run_window,
    stitch,
    walk_forward,
)
from include.config import get_strategy

GRID = [{"signal.slow": slow, "signal.full_confidence_atr": atr} for slow in ("sma_50", "sma_200")
        for atr in (0.1, 0.5)]  # fmt: skip
SPEC = WalkForwardSpec(in_sample=250, out_of_sample=100)
DATES = [date(2020, 1, 1) + timedelta(days=i) for i in range(1000)]


def test_rolling_windows_tile_the_out_of_sample_range():
    windows = plan_windows(DATES, WalkForwardSpec(in_sample=300, out_of_sample=200))
    assert [(w.in_sample_start, w.out_of_sample_start, w.out_of_sample_end) for w in windows] == [
        (DATES[0], DATES[300], DATES[499]), (DATES[200], DATES[500], DATES[699]), (DATES[400], DATES[700], DATES[899]),
        (DATES[600], DATES[900], DATES[999])]  # the last window is 100 sessions: half a window is kept
    for w in windows:
        assert DATES.index(w.out_of_sample_start) - DATES.index(w.in_sample_start) == 300
        assert w.in_sample_end < w.out_of_sample_start
        assert Window.from_dict(w.as_dict()) == w


def test_anchored_windows_expand_and_a_short_tail_is_dropped():
    windows = plan_windows(DATES[:950], WalkForwardSpec(in_sample=300, out_of_sample=200, anchored=True))
    assert {w.in_sample_start for w in windows} == {DATES[0]}
    assert [w.in_sample_end for w in windows] == [DATES[299], DATES[499], DATES[699]]  # 50-session tail dropped
    with pytest.raises(ValueError, match="cannot hold"):
        plan_windows(DATES[:300], WalkForwardSpec(in_sample=300, out_of_sample=200))


def test_stitch_chains_each_window_from_the_previous_end():
    out = stitch([{"dates": DATES[:3], "equity": [100.0, 110.0, 120.0], "invested": [0, 1, 1], "trade_pnls": [20.0]},
                  {"dates": DATES[3:5], "equity": [100.0, 90.0], "invested": [0, 1], "trade_pnls": [-10.0]}], 100.0)
    assert out.equity == pytest.approx([100, 110, 120, 120, 108]) and out.window_starts == [0, 3]
    assert out.metrics["total_return"] == pytest.approx(0.08)
    assert out.metrics["trade_count"] == 2 and out.metrics["win_rate"] == 0.5


def _perturbed(history: History, after: date, seed: int = 7) -> History:
    """Every row dated after ``after`` with its prices and indicators scaled by random factors."""
    rng = random.Random(seed)
    rows = []
    for sh in history.symbols.values():
        for row in sh.rows:
            if row["session_date"] > after:
                row = {k: (v * rng.uniform(0.7, 1.3) if isinstance(v, float) and k != "volume" else v)
                       for k, v in row.items()}
            rows.append(row)
    return History.from_rows(rows)


def test_out_of_sample_bars_do_not_influence_the_choice(mart_history):
    config = get_strategy(1)
    windows = plan_windows(mart_history.dates, SPEC)
    assert len(windows) == 5
    for window in windows[:3]:
        chosen, results = choose(config, mart_history, window, GRID, "sharpe")
        changed = _perturbed(mart_history, after=window.in_sample_end)
        assert changed.dates == mart_history.dates
        chosen_p, results_p = choose(config, changed, window, GRID, "sharpe")
        assert chosen_p == chosen and results_p == results  # same winner, same in-sample metrics, bit for bit
        # the perturbation is real: the out-of-sample score moves, and perturbing in-sample bars moves the sweep
        original = run_window(config, mart_history, window, GRID, "sharpe")
        perturbed = run_window(config, changed, window, GRID, "sharpe")
        assert perturbed.chosen == original.chosen and perturbed.out_of_sample.equity != original.out_of_sample.equity
        _, leaked = choose(config, _perturbed(mart_history, after=window.in_sample_start), window, GRID, "sharpe")
        assert [r["metrics"] for r in leaked] != [r["metrics"] for r in results]


def test_walk_forward_over_the_history(mart_history):
    results = walk_forward(get_strategy(1), mart_history, SPEC, GRID, "sharpe")
    assert [r.window.index for r in results] == [0, 1, 2, 3, 4]
    for r in results:
        assert r.out_of_sample.dates[0] == r.window.out_of_sample_start
        assert r.out_of_sample.dates[-1] == r.window.out_of_sample_end
        assert r.chosen["overrides"] in GRID and len(r.in_sample) == len(GRID)
