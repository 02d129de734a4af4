"""Walk-forward analysis: each in-sample window picks a parameter combination with the sweep's ranking, the
out-of-sample window right after it scores that choice, and the out-of-sample curves are stitched into one.
Pure (no MLflow, no database); no look-ahead and how windows are stitched: docs/walk-forward.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from include.backtest.engine import BacktestResult, CostModel, History, apply_overrides, run_backtest
from include.backtest.metrics import RANKABLE, compute_metrics

if TYPE_CHECKING:
    from include.config.models import StrategyConfig


class WalkForwardSpec(BaseModel):
    """Window lengths in sessions; ``anchored`` keeps every in-sample window starting at the first session
    (expanding), otherwise it rolls with a fixed length. Windows advance by ``out_of_sample`` sessions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    in_sample: int = Field(504, ge=20, le=10_000)
    out_of_sample: int = Field(126, ge=5, le=10_000)
    anchored: bool = False


@dataclass(frozen=True)
class Window:
    index: int
    in_sample_start: date
    in_sample_end: date
    out_of_sample_start: date
    out_of_sample_end: date

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, **{k: getattr(self, k).isoformat() for k in _DATE_FIELDS}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Window:
        return cls(int(data["index"]), *(date.fromisoformat(str(data[k])[:10]) for k in _DATE_FIELDS))


_DATE_FIELDS = ("in_sample_start", "in_sample_end", "out_of_sample_start", "out_of_sample_end")


def plan_windows(dates: Sequence[date], spec: WalkForwardSpec) -> list[Window]:
    """Consecutive out-of-sample windows after the first ``in_sample`` sessions. A trailing remainder shorter
    than half an out-of-sample window is dropped (too short to score)."""
    dates = sorted(set(dates))
    n, windows, start = len(dates), [], spec.in_sample
    while start < n:
        end = min(start + spec.out_of_sample, n) - 1
        if end - start + 1 < max(2, spec.out_of_sample // 2):
            break
        first = 0 if spec.anchored else start - spec.in_sample
        windows.append(Window(len(windows), dates[first], dates[start - 1], dates[start], dates[end]))
        start += spec.out_of_sample
    if not windows:
        raise ValueError(f"{n} sessions cannot hold an in-sample window of {spec.in_sample} sessions and an "
                         f"out-of-sample window of {spec.out_of_sample}")
    return windows


def slice_history(history: History, first: date, last: date) -> History:
    """Only the rows dated ``first``..``last`` (inclusive)."""
    return History.from_rows(r for s in history.symbols.values() for r in s.rows if first <= r["session_date"] <= last)


def finite(metrics: Mapping[str, float]) -> dict[str, float | None]:
    return {k: (v if math.isfinite(v) else None) for k, v in metrics.items()}


def best_of(results: Sequence[Mapping[str, Any]], metric: str) -> Mapping[str, Any]:
    """The result with the best finite ``metric`` (ties: the lowest index), as ``select_best`` ranks a sweep."""
    higher = RANKABLE[metric]
    ranked = [r for r in results if r["metrics"].get(metric) is not None]
    if not ranked:
        raise RuntimeError(f"no combination has a finite {metric}")
    return max(ranked, key=lambda r: (r["metrics"][metric] if higher else -r["metrics"][metric], -r["index"]))


def gap(metric: str, in_sample: float | None, out_of_sample: float | None) -> float | None:
    """How much worse the metric is out of sample (positive = worse), whichever direction is better."""
    if in_sample is None or out_of_sample is None:
        return None
    return in_sample - out_of_sample if RANKABLE[metric] else out_of_sample - in_sample


@dataclass
class WindowResult:
    window: Window
    chosen: Mapping[str, Any]  # {"index", "overrides", "metrics"}: the in-sample winner
    in_sample: list[dict[str, Any]]  # every combination's in-sample metrics
    out_of_sample: BacktestResult


def choose(config: StrategyConfig, history: History, window: Window, combos: Sequence[Mapping[str, Any]],
           metric: str, costs: CostModel | None = None, capital: float | None = None
           ) -> tuple[Mapping[str, Any], list[dict[str, Any]]]:
    """Run every combination on the in-sample rows only and rank them by ``metric``."""
    in_sample = slice_history(history, window.in_sample_start, window.in_sample_end)
    if not in_sample.dates:
        raise RuntimeError(f"window {window.index}: no rows between {window.in_sample_start} and "
                           f"{window.in_sample_end}")
    results = []
    for i, overrides in enumerate(combos):
        result = run_backtest(apply_overrides(config, overrides), in_sample, costs, capital=capital)
        results.append({"index": i, "overrides": dict(overrides), "metrics": finite(result.metrics)})
    return best_of(results, metric), results


def run_window(config: StrategyConfig, history: History, window: Window, combos: Sequence[Mapping[str, Any]],
               metric: str, costs: CostModel | None = None, capital: float | None = None) -> WindowResult:
    chosen, results = choose(config, history, window, combos, metric, costs, capital)
    oos = slice_history(history, window.out_of_sample_start, window.out_of_sample_end)
    if not oos.dates:
        raise RuntimeError(f"window {window.index}: no rows between {window.out_of_sample_start} and "
                           f"{window.out_of_sample_end}")
    scored = run_backtest(apply_overrides(config, chosen["overrides"]), oos, costs, capital=capital)
    return WindowResult(window, chosen, results, scored)


def walk_forward(config: StrategyConfig, history: History, spec: WalkForwardSpec,
                 combos: Sequence[Mapping[str, Any]], metric: str, costs: CostModel | None = None,
                 capital: float | None = None) -> list[WindowResult]:
    """Every window in order (what the DAG runs as one mapped task per window)."""
    return [run_window(config, history, w, combos, metric, costs, capital)
            for w in plan_windows(history.dates, spec)]


@dataclass
class Stitched:
    dates: list[date]
    equity: list[float]
    invested: list[bool]
    window_starts: list[int]  # index into dates where each window begins
    metrics: dict[str, float]


def stitch(windows: Iterable[Mapping[str, Any]], capital: float) -> Stitched:
    """Chain the out-of-sample curves: each window's curve is rescaled to start where the previous one ended.
    ``windows`` hold ``dates``, ``equity``, ``invested`` and ``trade_pnls`` (scaled like the equity)."""
    dates: list[date] = []
    equity: list[float] = []
    invested: list[bool] = []
    starts: list[int] = []
    pnls: list[float] = []
    level = capital
    for w in windows:
        if not w["equity"]:
            continue
        factor = level / w["equity"][0]
        starts.append(len(dates))
        dates += [d if isinstance(d, date) else date.fromisoformat(str(d)[:10]) for d in w["dates"]]
        equity += [e * factor for e in w["equity"]]
        invested += [bool(x) for x in w["invested"]]
        pnls += [p * factor for p in w["trade_pnls"]]
        level = equity[-1]
    if not equity:
        raise ValueError("no out-of-sample equity to stitch")
    return Stitched(dates, equity, invested, starts, compute_metrics(equity, pnls, invested))
