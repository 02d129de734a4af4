"""The trading DAG's shape, shared by ``ibkr_trading_strategy`` (any strategy, chosen by conf) and the
one-DAG-per-strategy factory: MLflow run -> environment | market open -> IBKR auth; then market data | backfill ->
features + verdicts -> signals -> risk -> orders -> charts -> end MLflow run -> cleanup (``|``: side by side)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task

from include.alerts.notifiers import failure_notifier
from include.gateway.sensors import GatewayGateSensor
from include.marketdata.sensors import MarketOpenSensor
from include.steps import step_task

TAGS = ["trading"]


def trading_params(strategy_id: int | None = None, dry_run: bool = True) -> dict[str, Param]:
    """The trigger form / conf schema (Airflow validates it at trigger time; the first task re-checks it)."""
    return {
        "strategy_id": Param(strategy_id, type="integer", minimum=1,
                             description="Strategy id from include/config/strategies.yaml"),
        "symbols": Param(None, type=["null", "array"], items={"type": "string"},
                         description="Tickers; empty = the strategy's symbols"),
        "dry_run": Param(dry_run, type="boolean", description="Record orders as simulated; touch no order endpoint"),
        "mode": Param(None, type=["null", "string"], enum=[None, "paper", "live"],
                      description="With dry_run false: paper or live (live also needs the strategy's mode live "
                                  "and ALLOW_LIVE_TRADING=yes)"),
        "ignore_market_hours": Param(False, type="boolean",
                                     description="Dry runs only: run outside exchange hours (refused in paper "
                                                 "and live)"),
    }


def build_trading_dag(dag_id: str, *, schedule: Any, params: dict[str, Param], doc_md: str,
                      tags: list[str] | None = None, description: str | None = None,
                      start_date: datetime | None = None, default_args: dict[str, Any] | None = None) -> DAG:
    from include.config.workflow import ConfigLoader

    # owner, retries and retry_delay from include/config/workflow.yaml (``defaults``); ``default_args`` wins
    with DAG(
        dag_id, schedule=schedule, start_date=start_date or datetime(2025, 1, 2), catchup=False, max_active_runs=1,
        params=params, tags=TAGS + (tags or []), doc_md=doc_md, description=description,
        default_args={**ConfigLoader().get_default_args(), "on_failure_callback": failure_notifier(),
                      **(default_args or {})},
    ) as dag:
        @task(task_id="start_mlflow_run", multiple_outputs=False)
        def start_mlflow_run() -> dict:
            from airflow.sdk.exceptions import AirflowFailException

            from include.settings import LiveTradingNotAllowed
            from include.trading import tasks
            from include.trading.conf import RunConfError

            try:
                return tasks.start_run(get_current_context()).model_dump(mode="json")
            except (RunConfError, LiveTradingNotAllowed) as exc:  # a retry cannot fix a bad conf
                raise AirflowFailException(str(exc)) from exc

        @step_task(multiple_outputs=False)
        def validate_environment(run: dict) -> dict:
            from include.trading import tasks
            from include.trading.context import TradingRun

            return tasks.validate_environment(TradingRun.model_validate(run))

        market_open = MarketOpenSensor(task_id="market_open", deferrable=True,
                                       ignore_market_hours="{{ params.ignore_market_hours }}")
        # Waits while the gateway is unreachable; skips the trading tasks while its session is unhealthy.
        ibkr_auth = GatewayGateSensor(task_id="ibkr_auth")

        # XCom carries each step's typed output as JSON (model_dump); the next task validates it back.
        @step_task(pool="ibkr_api", multiple_outputs=False)
        def fetch_market_data(run: dict) -> dict:
            from include.trading import tasks
            from include.trading.context import TradingRun
            from include.trading.step_metrics import guide_metrics

            trading_run = TradingRun.model_validate(run)
            with guide_metrics("fetch_market_data", trading_run):  # the guide's metrics also when it fails
                return tasks.fetch_market_data(trading_run, get_current_context()).model_dump(mode="json")

        @step_task(multiple_outputs=False)
        def backfill_symbols(run: dict) -> dict:
            """Symbols without bars or current features: fetched, built (dbt) and checked (GX) on demand."""
            from include.trading.context import TradingRun
            from include.trading.on_demand import backfill_symbols

            return backfill_symbols(TradingRun.model_validate(run), get_current_context())

        @step_task(multiple_outputs=False)
        def read_features(run: dict) -> dict:
            from include.trading import tasks
            from include.trading.context import TradingRun
            from include.trading.step_metrics import guide_metrics

            trading_run = TradingRun.model_validate(run)
            with guide_metrics("read_features", trading_run):
                return tasks.read_features(trading_run, get_current_context()).model_dump(mode="json")

        @step_task(multiple_outputs=False)
        def generate_signals(features: dict) -> dict:
            from include.trading import tasks
            from include.trading.context import FeatureSet
            from include.trading.step_metrics import guide_metrics

            feature_set = FeatureSet.model_validate(features)
            with guide_metrics("generate_signals", feature_set.run):
                return tasks.generate_signals(feature_set, get_current_context()).model_dump(mode="json")

        @step_task()
        def render_charts(signals: dict | None = None) -> list:
            from include.trading import tasks
            from include.trading.context import SignalSet

            if signals is None:  # no signals (a failed or skipped step): nothing to chart
                from airflow.sdk.exceptions import AirflowSkipException

                raise AirflowSkipException("no signals to chart")
            return tasks.render_charts(SignalSet.model_validate(signals), get_current_context())

        @step_task(multiple_outputs=False)
        def assess_risk(signals: dict, market: dict, features: dict) -> dict:
            from include.trading import tasks
            from include.trading.context import FeatureSet, MarketView, SignalSet

            return tasks.assess_risk(SignalSet.model_validate(signals), MarketView.model_validate(market),
                                     FeatureSet.model_validate(features), get_current_context()).model_dump(mode="json")

        @step_task(pool="ibkr_orders", multiple_outputs=False)
        def place_orders(risk: dict) -> dict:
            from include.trading import tasks
            from include.trading.context import RiskOutcome
            from include.trading.step_metrics import guide_metrics

            outcome = RiskOutcome.model_validate(risk)
            with guide_metrics("place_orders", outcome.run):
                return tasks.place_orders(outcome, get_current_context()).model_dump(mode="json")

        @step_task(retries=1)
        def end_mlflow_run(run: dict | None = None) -> str | None:
            from include.trading import tasks
            from include.trading.context import TradingRun

            return tasks.end_run(TradingRun.model_validate(run) if run else None, get_current_context())

        @step_task()
        def cleanup(run: dict | None = None) -> None:
            from include.trading import tasks
            from include.trading.context import TradingRun

            tasks.cleanup(TradingRun.model_validate(run) if run else None)

        run = start_mlflow_run()
        env = validate_environment(run)
        market = fetch_market_data(run)
        features = read_features(run)
        signals = generate_signals(features)
        charts = render_charts(signals)
        orders = place_orders(assess_risk(signals, market, features))
        # The checks before any data is read run side by side, each its own task (visible, retried, alerted on its
        # own): the environment as soon as the MLflow run exists (a broken deployment alerts at the trigger, not
        # hours later at the open); the market wait from the start, the gateway gate once the market is open.
        # Everything after waits for both: a failed check stops the run, an unhealthy gateway skips it (LLM too).
        [run, market_open] >> ibkr_auth
        checks = [env, ibkr_auth]
        checks >> market
        checks >> backfill_symbols(run) >> features  # symbols with no data yet get it first
        # Teardowns: they run whatever happened (once the MLflow run exists) without deciding the DAG run's state.
        # Charts come after the orders (rendering 100 PNGs must not delay them, on dag.test()'s serial path or on
        # a busy worker), whatever the orders did. place_orders decides the run's state; a failed chart task still
        # alerts and marks the MLflow run FAILED (end_mlflow_run reads every task's state).
        charts.as_teardown(setups=run)
        end = end_mlflow_run(run).as_teardown(setups=run)
        orders >> charts >> end >> cleanup(run).as_teardown(setups=run)
    return dag


def create_trading_dag(dag_id: str, *, strategy_id: int, schedule: Any = None, symbols: list[str] | None = None,
                       dry_run: bool = True, mode: str | None = None, description: str | None = None,
                       start_date: datetime | None = None, default_args: dict[str, Any] | None = None,
                       tags: list[str] | None = None, doc_md: str | None = None) -> DAG:
    """The guide's ``create_trading_dag``: ``ibkr_trading_strategy``'s shape for one strategy, on a schedule.

    ``strategy_id``, ``symbols`` (None: the strategy's), ``dry_run`` and ``mode`` (paper/live with
    ``dry_run=False``) become the defaults of the DAG's params, so a manual trigger can still override them.
    The strategy must exist in include/config/strategies.yaml (checked at parse time).
    """
    from include.config import get_strategy
    from include.settings import parse_symbols

    strategy = get_strategy(strategy_id)
    params = trading_params(strategy.id, dry_run=dry_run)
    if symbols:
        params["symbols"] = Param(list(parse_symbols(symbols)), type=["null", "array"], items={"type": "string"},
                                  description="Tickers; empty = the strategy's symbols")
    if mode is not None:
        if mode not in ("paper", "live"):
            raise ValueError(f"{dag_id}: mode must be 'paper' or 'live' (with dry_run=False), got {mode!r}")
        params["mode"] = Param(mode, type=["null", "string"], enum=[None, "paper", "live"],
                               description=params["mode"].description)
    text = description or strategy.description or f"Strategy {strategy.name}"
    return build_trading_dag(dag_id, schedule=schedule, params=params, doc_md=doc_md or f"**{strategy.name}**: {text}",
                             tags=tags, description=text, start_date=start_date, default_args=default_args)
