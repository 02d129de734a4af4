"""``strategy_backtest`` once through ``dag.test()``: a 4-combination sweep on a dbt-built history, one MLflow
child run per combination under the parent, the best one tagged on both."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.airflow


def test_sweep_logs_child_runs_and_tags_the_best(run_dag, stack_env, tmp_path):
    from include.tracking import client
    from sim.synthetic import build_mart, load_simulator_bars

    dsn = stack_env["MARKET_DB_URL"]
    load_simulator_bars(dsn, ["AAA", "BBB", "CCC"], 400)
    build_mart(dsn, tmp_path / "dbt")
    grid = {"signal.oversold": [30, 40], "risk.min_confidence": [0.5, 0.7]}
    state, tasks = run_dag("strategy_backtest", {"strategy_id": 2, "symbols": ["AAA", "BBB", "CCC"], "grid": grid,
                                                 "metric": "sharpe", "start": "2014-06-01"})
    assert state == "success", tasks
    assert sum(k.startswith("run_combination[") and v == "success" for k, v in tasks.items()) == 4, tasks
    assert tasks["select_best"] == tasks["close_parent"] == "success"

    mlflow = client()
    experiment = mlflow.get_experiment_by_name("ibkr-backtest-rsi_mean_reversion")
    runs = mlflow.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("backtest.role") == "parent"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 4 and parent.info.status == "FINISHED"
    assert {c.info.status for c in children} == {"FINISHED"}
    combos = {(c.data.params["override.signal.oversold"], c.data.params["override.risk.min_confidence"])
              for c in children}
    assert combos == {("30", "0.5"), ("30", "0.7"), ("40", "0.5"), ("40", "0.7")}
    for c in children:
        assert {"total_return", "cagr", "sharpe", "sortino", "max_drawdown", "win_rate", "trade_count",
                "exposure"} <= set(c.data.metrics)
        assert c.data.params["first_session"] >= "2014-06-01"
    best = max(children, key=lambda c: c.data.metrics["sharpe"])
    assert parent.data.tags["best_child_run_id"] == best.info.run_id
    assert parent.data.metrics["best_sharpe"] == pytest.approx(best.data.metrics["sharpe"])
    assert [c.data.tags.get("backtest.best") for c in children].count("true") == 1
    assert best.data.tags["backtest.best"] == "true"
    artifacts = {a.path for a in mlflow.list_artifacts(best.info.run_id, "charts")}
    assert artifacts == {"charts/equity_drawdown.png"}
    assert {a.path for a in mlflow.list_artifacts(best.info.run_id, "backtest")} >= {
        "backtest/equity.csv", "backtest/trades.csv", "backtest/fills.csv"}
    assert {a.path for a in mlflow.list_artifacts(parent.info.run_id, "sweep")} == {"sweep/results.csv"}


def test_a_bad_grid_fails_at_once(run_dag, stack_env):
    state, tasks = run_dag("strategy_backtest", {"strategy_id": 2, "grid": {"signal.oversold": [80]}})
    assert state == "failed" and tasks["start_parent"] == "failed"


def test_walk_forward_of_the_sma_strategy_over_ten_years(run_dag, stack_env, tmp_path):
    """10 years of simulator bars, 2-year in-sample / 1-year out-of-sample rolling windows: a child run per window
    with its in-sample choice and out-of-sample score, the stitched out-of-sample curve on the parent."""
    from include.tracking import client
    from sim.synthetic import build_mart, load_simulator_bars

    dsn = stack_env["MARKET_DB_URL"]
    load_simulator_bars(dsn, ["AAA", "BBB"], 2520)  # 2014-01-02 .. 2024-01-05
    build_mart(dsn, tmp_path / "dbt")
    conf = {"strategy_id": 1, "symbols": ["AAA", "BBB"], "metric": "sharpe", "start": "2014-01-02", "end": None,
            "grid": {"signal.slow": ["sma_50", "sma_200"], "signal.full_confidence_atr": [0.1, 0.25]},
            "walk_forward": {"in_sample": 504, "out_of_sample": 252}}
    state, tasks = run_dag("strategy_backtest", conf)
    assert state == "success", tasks
    windows = [k for k, v in tasks.items() if k.startswith("run_window[") and v == "success"]
    assert len(windows) == 8, tasks
    assert tasks["stitch_windows"] == "success" and tasks["select_best"] == "skipped"

    mlflow = client()
    experiment = mlflow.get_experiment_by_name("ibkr-backtest-sma_crossover_20_50")
    runs = mlflow.search_runs([experiment.experiment_id], filter_string="tags.`backtest.role` = 'parent'")
    parent = max(runs, key=lambda r: r.info.start_time)
    assert parent.info.status == "FINISHED" and parent.data.params["mode"] == "walk_forward"
    children = mlflow.search_runs([experiment.experiment_id],
                                  filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(int(c.data.tags["backtest.window"]) for c in children) == list(range(8))
    for c in children:
        assert c.data.params["in_sample_end"] < c.data.params["out_of_sample_start"]
        assert {"is.sharpe", "oos.sharpe", "gap.sharpe", "oos.total_return"} <= set(c.data.metrics)
        assert c.data.params["chosen.signal.slow"] in {"sma_50", "sma_200"}
    first = min(c.data.params["out_of_sample_start"] for c in children)
    last = max(c.data.params["out_of_sample_end"] for c in children)
    assert (first, last) == ("2016-01-04", "2024-01-05")
    assert {"wf.oos.sharpe", "wf.oos.total_return", "wf.is_mean.sharpe", "wf.gap.sharpe"} <= set(parent.data.metrics)
    assert len(mlflow.get_metric_history(parent.info.run_id, "wf.window.oos.sharpe")) == 8
    assert {a.path for a in mlflow.list_artifacts(parent.info.run_id, "charts")} == {"charts/walk_forward_equity.png"}
    assert {a.path for a in mlflow.list_artifacts(parent.info.run_id, "walk_forward")} == {
        "walk_forward/stitched_equity.csv", "walk_forward/windows.csv"}
    curve = mlflow.download_artifacts(parent.info.run_id, "walk_forward/stitched_equity.csv", str(tmp_path))
    lines = Path(curve).read_text().splitlines()
    assert len(lines) - 1 == 8 * 252 and lines[1].startswith(first)
