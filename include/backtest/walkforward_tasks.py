"""Task bodies of ``strategy_backtest`` in walk-forward mode: plan the windows, one mapped task and MLflow child run
per window (in-sample sweep, chosen combination, out-of-sample score), then the stitched out-of-sample curve and the
in-sample vs out-of-sample gap on the parent run."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from include.backtest.tasks import PARENT_TAG, _csv
from include.settings import load_settings

log = logging.getLogger(__name__)
WINDOW_TAG = "backtest.window"
SESSIONS_SQL = """
SELECT DISTINCT session_date FROM analytics_marts.fct_daily_indicators
WHERE symbol = ANY(%(symbols)s)
  AND (%(start)s::date IS NULL OR session_date >= %(start)s::date)
  AND (%(end)s::date IS NULL OR session_date <= %(end)s::date)
ORDER BY session_date
"""


def plan_windows(parent: dict[str, Any]) -> list[dict[str, Any]]:
    """The windows over the mart's sessions; none in sweep mode (the mapped task is then skipped)."""
    from include.backtest.walkforward import WalkForwardSpec, plan_windows
    from include.marketdata.db import connection

    if not parent.get("walk_forward"):
        return []
    with connection(load_settings().require_market_db_url()) as conn, conn.cursor() as cur:
        cur.execute(SESSIONS_SQL, {"symbols": parent["symbols"], "start": parent["start"], "end": parent["end"]})
        dates = [row[0] for row in cur.fetchall()]
    windows = plan_windows(dates, WalkForwardSpec(**parent["walk_forward"]))
    log.info("%d walk-forward windows over %d sessions", len(windows), len(dates))
    return [w.as_dict() for w in windows]


def _window_run(parent: dict[str, Any], index: int) -> str:
    """This window's child run: found by tags on a retry, else created under the parent."""
    from include.tracking import client

    mlflow = client()
    experiment_id = mlflow.get_run(parent["parent_run_id"]).info.experiment_id
    found = mlflow.search_runs([experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent['parent_run_id']}'"
                               f" AND tags.`{WINDOW_TAG}` = '{index}'", max_results=1)
    if found:
        if found[0].info.status != "RUNNING":
            mlflow.update_run(found[0].info.run_id, status="RUNNING")
        return found[0].info.run_id
    run = mlflow.create_run(experiment_id, run_name=f"{parent['strategy']}@window{index}",
                            tags={PARENT_TAG: parent["parent_run_id"], WINDOW_TAG: str(index),
                                  "backtest.role": "window"})
    return run.info.run_id


def run_window(parent: dict[str, Any], window: dict[str, Any]) -> dict[str, Any]:
    """Sweep the in-sample rows, score the winner on the out-of-sample rows, log both to the window's child run.
    The history is read only up to the window's last out-of-sample session."""
    from include.backtest.engine import CostModel, load_history
    from include.backtest.walkforward import Window, finite, gap, run_window
    from include.config import get_strategy
    from include.marketdata.db import connection
    from include.tracking import RunLogger, end_run

    w = Window.from_dict(window)
    config = get_strategy(parent["strategy_id"])
    combos = [c["overrides"] for c in parent["combinations"]]
    metric = parent["metric"]
    with connection(load_settings().require_market_db_url()) as conn:
        history = load_history(conn, parent["symbols"], w.in_sample_start, w.out_of_sample_end)
    child = _window_run(parent, w.index)
    logger = RunLogger(child)
    try:
        result = run_window(config, history, w, combos, metric, CostModel(**parent["costs"]), parent["capital"])
        oos = result.out_of_sample
        is_metrics, oos_metrics = result.chosen["metrics"], finite(oos.metrics)
        window_gap = gap(metric, is_metrics.get(metric), oos_metrics.get(metric))
        log.info("window %s chose %s: in-sample %s=%s, out-of-sample %s", w.index, result.chosen["overrides"],
                 metric, is_metrics.get(metric), oos_metrics.get(metric))
        logger.log_batch(
            params={"window": w.index, **{k: v for k, v in w.as_dict().items() if k != "index"},
                    "chosen_combination": result.chosen["index"], "metric": metric,
                    **{f"chosen.{k}": v for k, v in result.chosen["overrides"].items()}},
            metrics={**{f"is.{k}": v for k, v in is_metrics.items()}, **{f"oos.{k}": v for k, v in oos_metrics.items()},
                     f"gap.{metric}": window_gap, "combinations_run": len(result.in_sample)},
        )  # fmt: skip
        rows = [{"combination": r["index"], "chosen": int(r["index"] == result.chosen["index"]),
                 **{f"override.{k}": v for k, v in r["overrides"].items()}, **r["metrics"]} for r in result.in_sample]
        logger.log_text(_csv(rows, list(dict.fromkeys(k for row in rows for k in row))), "walk_forward/in_sample.csv")
        equity = [{"session_date": d, "equity": round(e, 4), "invested": int(x)}
                  for d, e, x in zip(oos.dates, oos.equity, oos.invested, strict=True)]
        logger.log_text(_csv(equity, ["session_date", "equity", "invested"]), "walk_forward/out_of_sample_equity.csv")
    except Exception:
        end_run(child, "failed")
        raise
    end_run(child, "success")
    return {**w.as_dict(), "child_run_id": child, "chosen": result.chosen["overrides"],
            "chosen_index": result.chosen["index"], "in_sample": is_metrics, "out_of_sample": oos_metrics,
            "gap": window_gap, "dates": [d.isoformat() for d in oos.dates], "equity": oos.equity,
            "invested": oos.invested, "trade_pnls": [t.pnl for t in oos.trades]}


def stitch_windows(parent: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    """The parent run gets the stitched out-of-sample curve (CSV + chart), its metrics, the per-window in-sample
    and out-of-sample metric (one step per window) and the gap between them; then it is closed."""
    from include.backtest.charts import render_walk_forward_chart
    from include.backtest.walkforward import finite, gap, stitch
    from include.tracking import RunLogger, end_run

    metric = parent["metric"]
    results = sorted(results, key=lambda r: r["index"])
    capital = parent["capital"] or results[0]["equity"][0]
    stitched = stitch(results, capital)
    oos = finite(stitched.metrics)
    is_values = [r["in_sample"][metric] for r in results if r["in_sample"].get(metric) is not None]
    is_mean = sum(is_values) / len(is_values) if is_values else None
    oos_means = [r["out_of_sample"][metric] for r in results if r["out_of_sample"].get(metric) is not None]
    oos_mean = sum(oos_means) / len(oos_means) if oos_means else None
    logger = RunLogger(parent["parent_run_id"])
    summary = {f"wf.oos.{k}": v for k, v in oos.items()}
    summary.update({f"wf.is_mean.{metric}": is_mean, f"wf.oos_mean.{metric}": oos_mean,
                    f"wf.gap.{metric}": gap(metric, is_mean, oos_mean), "wf.windows": len(results)})
    logger.log_batch(metrics=summary, tags={"walk_forward.metric": metric})
    for r in results:  # one step per window: the MLflow chart of is vs oos by window
        logger.log_batch(metrics={f"wf.window.is.{metric}": r["in_sample"].get(metric),
                                  f"wf.window.oos.{metric}": r["out_of_sample"].get(metric),
                                  f"wf.window.gap.{metric}": r["gap"]}, step=r["index"])
    rows = [{"window": r["index"], "in_sample_start": r["in_sample_start"], "in_sample_end": r["in_sample_end"],
             "out_of_sample_start": r["out_of_sample_start"], "out_of_sample_end": r["out_of_sample_end"],
             "chosen": r["chosen"], "child_run_id": r["child_run_id"], f"is.{metric}": r["in_sample"].get(metric),
             f"oos.{metric}": r["out_of_sample"].get(metric), f"gap.{metric}": r["gap"]} for r in results]
    logger.log_text(_csv(rows, list(rows[0])), "walk_forward/windows.csv")
    curve = [{"session_date": d, "equity": round(e, 4), "invested": int(x)}
             for d, e, x in zip(stitched.dates, stitched.equity, stitched.invested, strict=True)]
    logger.log_text(_csv(curve, ["session_date", "equity", "invested"]), "walk_forward/stitched_equity.csv")
    with tempfile.TemporaryDirectory() as tmp:
        title = (f"{parent['strategy']} walk-forward: {len(results)} windows, out-of-sample "
                 f"{stitched.metrics['total_return']:+.2%}, {metric} in/out {is_mean or 0:.2f}/{oos_mean or 0:.2f}")
        chart = render_walk_forward_chart(stitched.dates, stitched.equity, stitched.window_starts, capital,
                                          Path(tmp) / "walk_forward_equity.png", title)
        logger.log_file(chart, "charts")
    end_run(parent["parent_run_id"], "success")
    return {"windows": len(results), "metric": metric, "in_sample_mean": is_mean, "out_of_sample_mean": oos_mean,
            "out_of_sample": oos}
