"""Task bodies of ``strategy_backtest``: a parent MLflow run per DAG run, one child run per parameter combination
(dynamic task mapping), the best combination tagged on both by the chosen metric."""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import math
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from include.settings import load_settings

log = logging.getLogger(__name__)
MAX_COMBINATIONS = 256
PARENT_TAG = "mlflow.parentRunId"
COMBINATION_TAG = "backtest.combination"
BEST_TAG = "backtest.best"


class BacktestConfError(ValueError):
    """The DAG run's conf cannot be backtested (a retry cannot fix it)."""


def _date(value: Any, name: str) -> str | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)[:10]).isoformat()
    except ValueError:
        raise BacktestConfError(f"{name} must be an ISO date (YYYY-MM-DD), got {value!r}") from None


def combinations(grid: dict[str, list[Any]] | None) -> list[dict[str, Any]]:
    """The cartesian product of ``grid`` (dotted key -> values), in a stable order; ``{}`` -> one empty override."""
    grid = grid or {}
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise BacktestConfError(f"grid[{key!r}] must be a non-empty list of values, got {values!r}")
    keys = sorted(grid)
    combos = [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]
    if len(combos) > MAX_COMBINATIONS:
        raise BacktestConfError(f"{len(combos)} parameter combinations; at most {MAX_COMBINATIONS}")
    return combos


def start_parent(context: Any) -> dict[str, Any]:
    """Validate the conf and every combination, open the parent MLflow run; returns what every task needs."""
    from include.backtest.engine import CostModel, apply_overrides
    from include.backtest.metrics import RANKABLE
    from include.config import get_strategy
    from include.tracking import MLFLOW_RUN_ID_XCOM_KEY, context_ids, start_run

    params = context["params"]
    try:
        strategy = get_strategy(int(params["strategy_id"]))
    except (LookupError, ValueError, TypeError) as exc:
        raise BacktestConfError(f"strategy_id {params.get('strategy_id')!r}: {exc}") from None
    if strategy.signal.model == "llm":
        raise BacktestConfError(f"strategy {strategy.id} ({strategy.name}) asks an LLM: not backtestable offline")
    if strategy.signal.model == "ml":  # the champion was fitted on this history: its backtest would score training data
        raise BacktestConfError(f"strategy {strategy.id} ({strategy.name}) is the ML model: its hold-out metrics are "
                                "in the train_signal_model MLflow run; a backtest over its training history would leak")
    metric = params.get("metric") or "sharpe"
    if metric not in RANKABLE:
        raise BacktestConfError(f"metric {metric!r} is not rankable; choose from {sorted(RANKABLE)}")
    combos = combinations(params.get("grid"))
    walk_forward = _walk_forward(params.get("walk_forward"))
    for overrides in combos:
        try:
            apply_overrides(strategy, overrides)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise BacktestConfError(f"combination {overrides}: {exc}") from None
    try:
        costs = CostModel(**{k: params[k] for k in ("commission_per_share", "commission_min", "slippage_bps")
                             if params.get(k) is not None})
    except ValueError as exc:
        raise BacktestConfError(f"costs: {exc}") from None
    symbols = [s.upper() for s in (params.get("symbols") or strategy.symbols)]
    start, end = _date(params.get("start"), "start"), _date(params.get("end"), "end")
    capital = params.get("capital")
    ids = context_ids(context)
    mlflow_params = {"strategy_id": strategy.id, "strategy": strategy.name, "signal_model": strategy.signal.model,
                     "symbols": ",".join(symbols), "start": start or "all", "end": end or "all", "metric": metric,
                     "grid": json.dumps(params.get("grid") or {}, sort_keys=True), "combinations": len(combos),
                     "capital": capital or "default", **{f"costs.{k}": v for k, v in costs.model_dump().items()},
                     "mode": "walk_forward" if walk_forward else "sweep",
                     **{f"walk_forward.{k}": v for k, v in (walk_forward or {}).items()}}
    parent = start_run(f"ibkr-backtest-{strategy.name}", dag_id=ids["dag_id"], run_id=ids["run_id"],
                       try_number=ids["try_number"], params=mlflow_params, tags={"backtest.role": "parent"})
    context["ti"].xcom_push(key=MLFLOW_RUN_ID_XCOM_KEY, value=parent)
    return {"parent_run_id": parent, "strategy_id": strategy.id, "strategy": strategy.name, "symbols": symbols,
            "start": start, "end": end, "metric": metric, "costs": costs.model_dump(), "capital": capital,
            "walk_forward": walk_forward, "combinations": [{"index": i, "overrides": o} for i, o in enumerate(combos)]}


def _walk_forward(spec: Any) -> dict[str, Any] | None:
    """The walk-forward window spec (``include.backtest.walkforward.WalkForwardSpec``), None for a plain sweep."""
    from include.backtest.walkforward import WalkForwardSpec

    if not spec:
        return None
    try:
        return WalkForwardSpec.model_validate(spec).model_dump()
    except ValueError as exc:
        raise BacktestConfError(f"walk_forward: {exc}") from None


def plan_combinations(parent: dict[str, Any]) -> list[dict[str, Any]]:
    """One mapped backtest per combination; none in walk-forward mode (each window sweeps its in-sample rows)."""
    return [] if parent.get("walk_forward") else parent["combinations"]


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _child_run(parent: dict[str, Any], index: int) -> str:
    """This combination's child run: found by tags on a retry, else created under the parent."""
    from include.tracking import client

    mlflow = client()
    experiment_id = mlflow.get_run(parent["parent_run_id"]).info.experiment_id
    found = mlflow.search_runs([experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent['parent_run_id']}'"
                               f" AND tags.`{COMBINATION_TAG}` = '{index}'", max_results=1)
    if found:
        if found[0].info.status != "RUNNING":
            mlflow.update_run(found[0].info.run_id, status="RUNNING")
        return found[0].info.run_id
    run = mlflow.create_run(experiment_id, run_name=f"{parent['strategy']}#{index}",
                            tags={PARENT_TAG: parent["parent_run_id"], COMBINATION_TAG: str(index),
                                  "backtest.role": "child"})
    return run.info.run_id


def _finite(metrics: dict[str, float]) -> dict[str, float | None]:
    return {k: (v if math.isfinite(v) else None) for k, v in metrics.items()}


def run_combination(parent: dict[str, Any], combo: dict[str, Any]) -> dict[str, Any]:
    """Backtest one combination; log it to its child run (params, metrics, equity/trades/fills CSV, the
    protection events and the equity + drawdown chart)."""
    from include.backtest.charts import render_equity_chart
    from include.backtest.engine import CostModel, apply_overrides, load_history, run_backtest
    from include.config import get_strategy
    from include.marketdata.db import connection
    from include.tracking import RunLogger, end_run

    config = apply_overrides(get_strategy(parent["strategy_id"]), combo["overrides"])
    with connection(load_settings().require_market_db_url()) as conn:
        history = load_history(conn, parent["symbols"], parent["start"], parent["end"])
    if not history.dates:
        raise RuntimeError(f"no mart rows for {parent['symbols']} between {parent['start']} and {parent['end']}: "
                           "run ingestion and market_data_models first")
    child = _child_run(parent, combo["index"])
    logger = RunLogger(child)
    try:
        result = run_backtest(config, history, CostModel(**parent["costs"]), capital=parent["capital"])
        log.info("combination %s %s: %s", combo["index"], combo["overrides"], result.metrics)
        params = {"combination": combo["index"], "strategy": config.name, "symbols": ",".join(parent["symbols"]),
                  "first_session": history.dates[0], "last_session": history.dates[-1], "capital": result.capital,
                  **{f"override.{k}": v for k, v in combo["overrides"].items()},
                  "signal": config.signal.model_dump(mode="json"),
                  "risk": config.risk.model_dump(mode="json"),
                  "protections": config.protections.model_dump(mode="json")}
        metrics = {**result.metrics, "bars": result.bars, "backtest_seconds": result.seconds,
                   "bars_per_second": result.bars / result.seconds if result.seconds else 0.0,
                   "protection_events": len(result.protection_events),
                   **{f"vetoes.{k}": v for k, v in result.vetoes.items()}}
        logger.log_batch(params=params, metrics=metrics)
        equity = [{"session_date": d, "equity": round(e, 4), "invested": int(x)}
                  for d, e, x in zip(result.dates, result.equity, result.invested, strict=True)]
        logger.log_text(_csv(equity, ["session_date", "equity", "invested"]), "backtest/equity.csv")
        logger.log_text(_csv(result.trades_table(), ["symbol", "entry_date", "exit_date", "quantity", "cost",
                                                     "commission", "pnl"]), "backtest/trades.csv")
        logger.log_text(_csv(result.fills, ["session_date", "symbol", "side", "quantity", "price", "commission",
                                            "signal_date"]), "backtest/fills.csv")
        logger.log_dict(result.protection_events, "backtest/protection_events.json")
        with tempfile.TemporaryDirectory() as tmp:
            chart = render_equity_chart(result, Path(tmp) / "equity_drawdown.png",
                                        title=f"{config.name} #{combo['index']} {combo['overrides'] or ''}")
            logger.log_file(chart, "charts")
    except Exception:
        end_run(child, "failed")
        raise
    end_run(child, "success")
    return {"index": combo["index"], "overrides": combo["overrides"], "child_run_id": child,
            "metrics": _finite(result.metrics)}


def select_best(parent: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    """Rank the combinations by the chosen metric; tag the best on the parent and on its child run; close the
    parent run."""
    from include.backtest.metrics import RANKABLE
    from include.tracking import RunLogger, end_run

    metric = parent["metric"]
    higher = RANKABLE[metric]
    ranked = [r for r in results if r["metrics"].get(metric) is not None]
    if not ranked:
        raise RuntimeError(f"no combination has a finite {metric}")
    best = max(ranked, key=lambda r: (r["metrics"][metric] if higher else -r["metrics"][metric], -r["index"]))
    rows = [{"combination": r["index"], "child_run_id": r["child_run_id"], **{f"override.{k}": v
             for k, v in r["overrides"].items()}, **r["metrics"]} for r in sorted(results, key=lambda r: r["index"])]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    logger = RunLogger(parent["parent_run_id"])
    logger.log_batch(
        metrics={f"best_{metric}": best["metrics"][metric], "combinations_run": len(results)},
        tags={"best_child_run_id": best["child_run_id"], "best_combination": json.dumps(best["overrides"]),
              "best_combination_index": best["index"], "best_metric": metric,
              **{f"best.{k}": v for k, v in best["metrics"].items() if v is not None}},
    )  # fmt: skip
    logger.log_text(_csv(rows, columns), "sweep/results.csv")
    RunLogger(best["child_run_id"]).set_tags({BEST_TAG: "true", "best_metric": metric})
    end_run(parent["parent_run_id"], "success")
    return {"best": best, "metric": metric, "combinations": len(results)}


def close_parent(parent: dict[str, Any] | None, context: Any) -> str | None:
    """Teardown: a parent run still RUNNING (a combination or the ranking failed) ends FAILED."""
    from include.tracking import client, end_run

    if not parent:
        return None
    info = client().get_run(parent["parent_run_id"]).info
    if info.status == "RUNNING":
        end_run(parent["parent_run_id"], "failed")
        return "failed"
    return info.status
