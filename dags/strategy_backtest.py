"""Backtest a configured strategy on the dbt mart history: a parameter sweep (one mapped task per combination) or
a walk-forward analysis (one mapped task per window). Logic in include/backtest; this file only wires the tasks."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, get_current_context, task

from include.alerts.notifiers import failure_notifier

DOC = """
### strategy_backtest

Runs a strategy from `include/config/strategies.yaml` (its own `generate()`) over
`analytics_marts.fct_daily_indicators`: signals at the close of day *t* fill at the open of *t+1*, with
commission and slippage, sized and checked by the live risk engine (protections included).

- `start_parent`: validates the conf and every combination, opens the parent MLflow run
  (experiment `ibkr-backtest-<strategy>`)
- `run_combination` (mapped, one per combination of `grid`): a child run (`mlflow.parentRunId`) with total
  return, CAGR, Sharpe, Sortino, max drawdown, win rate, trade count, exposure, the equity/trades CSVs and the
  equity + drawdown chart
- `select_best`: tags the best combination by `metric` on the parent and on that child run
  (`backtest.best = true`), closes the parent run; `close_parent` (teardown) fails it if something failed

`grid` maps dotted config keys to lists, e.g.
`{"signal.oversold": [25, 30], "protections.max_drawdown.max_drawdown_pct": [0.1, 0.2]}`.

With `walk_forward` (e.g. `{"in_sample": 504, "out_of_sample": 126, "anchored": false}`, in sessions) the sweep
runs per window instead: `run_window` (mapped) picks the best combination on the in-sample rows only and scores it
on the next out-of-sample window (a child run per window); `stitch_windows` logs the stitched out-of-sample
equity chart and the in-sample vs out-of-sample gap on the parent. See docs/walk-forward.md.
"""


def _params() -> dict[str, Param]:
    return {
        "strategy_id": Param(1, type="integer", minimum=1, description="Strategy id from strategies.yaml"),
        "symbols": Param(None, type=["null", "array"], items={"type": "string"},
                         description="Tickers; empty = the strategy's symbols"),
        "start": Param(None, type=["null", "string"], description="First session (YYYY-MM-DD); empty = all"),
        "end": Param(None, type=["null", "string"], description="Last session (YYYY-MM-DD); empty = all"),
        "grid": Param({}, type="object", description="Dotted config key -> list of values (cartesian product)"),
        "metric": Param("sharpe", type="string",
                        enum=["sharpe", "sortino", "cagr", "total_return", "max_drawdown", "win_rate"],
                        description="What the best combination is chosen by"),
        "walk_forward": Param(None, type=["null", "object"],
                              description='Walk-forward windows in sessions: {"in_sample": 504, "out_of_sample": '
                                          '126, "anchored": false}; empty = a plain sweep'),
        "capital": Param(None, type=["null", "number"],
                         description="Starting equity; empty = protections.capital, else risk.max_gross_exposure"),
        "commission_per_share": Param(0.005, type="number", minimum=0, description="$ per share (IBKR fixed)"),
        "commission_min": Param(1.0, type="number", minimum=0, description="minimum $ per order"),
        "slippage_bps": Param(5.0, type="number", minimum=0, description="fill price worse than the open, in bps"),
    }


with DAG(
    "strategy_backtest", schedule=None, start_date=datetime(2025, 1, 2), catchup=False, max_active_runs=2,
    params=_params(), tags=["backtest", "trading"], doc_md=DOC,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30), "on_failure_callback": failure_notifier()},
) as dag:

    @task(multiple_outputs=False)
    def start_parent() -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from include.backtest import tasks

        try:
            return tasks.start_parent(get_current_context())
        except tasks.BacktestConfError as exc:  # a retry cannot fix a bad conf
            raise AirflowFailException(str(exc)) from exc

    @task
    def plan_combinations(parent: dict) -> list:
        from include.backtest import tasks

        return tasks.plan_combinations(parent)

    @task(map_index_template="{{ combo_label }}", multiple_outputs=False)
    def run_combination(parent: dict, combo: dict) -> dict:
        from include.backtest import tasks

        get_current_context()["combo_label"] = f"#{combo['index']} {combo['overrides']}"
        return tasks.run_combination(parent, combo)

    @task(multiple_outputs=False)
    def select_best(parent: dict, results: list) -> dict:
        from include.backtest import tasks

        return tasks.select_best(parent, list(results))

    @task
    def plan_windows(parent: dict) -> list:
        from include.backtest import walkforward_tasks

        return walkforward_tasks.plan_windows(parent)

    @task(map_index_template="{{ window_label }}", multiple_outputs=False)
    def run_window(parent: dict, window: dict) -> dict:
        from include.backtest import walkforward_tasks

        get_current_context()["window_label"] = f"#{window['index']} {window['out_of_sample_start']}"
        return walkforward_tasks.run_window(parent, window)

    @task(multiple_outputs=False)
    def stitch_windows(parent: dict, results: list) -> dict:
        from include.backtest import walkforward_tasks

        return walkforward_tasks.stitch_windows(parent, list(results))

    @task
    def close_parent(parent: dict | None = None) -> str | None:
        from include.backtest import tasks

        return tasks.close_parent(parent, get_current_context())

    parent = start_parent()
    results = run_combination.partial(parent=parent).expand(combo=plan_combinations(parent))
    best = select_best(parent, results)
    stitched = stitch_windows(parent, run_window.partial(parent=parent).expand(window=plan_windows(parent)))
    [best, stitched] >> close_parent(parent).as_teardown(setups=parent)
