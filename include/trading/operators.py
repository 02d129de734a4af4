"""The workflow guide's operators over the trading task bodies (``include.trading.tasks``): market data, signals,
risk + orders through the intent ledger. Each returns its typed output (``include.trading.context``) as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from include.tracking.links import START_TASK_ID

if TYPE_CHECKING:
    from include.risk.limits import RiskLimits

RUN_XCOM_KEY = "trading_run"  # the TradingRun an operator started (no start_mlflow_run task in the DAG)
QUOTE_FIELDS = ("last", "bid", "ask", "quote_at", "captured_at")


class TradingOperator(BaseOperator):
    """Base: finds the DAG run's ``TradingRun`` (the return value of ``run_task_id``, else one an upstream operator
    started) or starts it from the DAG params plus ``strategy_id``/``symbols`` (``tasks.start_run``: conf checks,
    mode, sessions, the MLflow run). ``track_mlflow=False`` switches off what the operator adds (the guide's metrics
    of a failed step, override tags); the task bodies always log to the DAG run's MLflow run."""

    def __init__(self, *, strategy_id: int | None = None, track_mlflow: bool = True,
                 run_task_id: str = START_TASK_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if strategy_id is not None and (isinstance(strategy_id, bool) or not isinstance(strategy_id, int)
                                        or strategy_id < 1):
            raise ValueError(f"{self.task_id}: strategy_id must be a positive integer, got {strategy_id!r}")
        self.strategy_id = strategy_id
        self.track_mlflow = track_mlflow
        self.run_task_id = run_task_id

    def trading_run(self, context: Any, symbols: Sequence[str] | None = None) -> Any:
        from airflow.sdk.exceptions import AirflowFailException

        from include.trading import tasks
        from include.trading.conf import RunConfError
        from include.trading.context import TradingRun

        ti = context["ti"]
        raw = ti.xcom_pull(task_ids=self.run_task_id) if self.run_task_id in self.dag.task_ids else None
        if raw is None:
            upstream = sorted(self.get_flat_relative_ids(upstream=True))
            raw = next((r for r in (ti.xcom_pull(task_ids=upstream, key=RUN_XCOM_KEY) if upstream else []) or []
                        if r), None)
        if raw is not None:
            run = TradingRun.model_validate(raw)
        else:
            params = {k: v for k, v in dict(context.get("params") or {}).items()}
            if self.strategy_id is not None:
                params["strategy_id"] = self.strategy_id
            if symbols:
                params["symbols"] = list(symbols)
            try:
                run = tasks.start_run({**context, "params": params})
            except (RunConfError, ValueError) as exc:  # a bad conf or strategy: a retry cannot fix it
                raise AirflowFailException(str(exc)) from exc
            ti.xcom_push(key=RUN_XCOM_KEY, value=run.model_dump(mode="json"))
        if self.strategy_id is not None and run.strategy_id != self.strategy_id:
            raise AirflowFailException(f"{self.task_id}: strategy_id {self.strategy_id} but this DAG run trades "
                                       f"strategy {run.strategy_id} ({run.strategy})")
        return run

    def pull(self, context: Any, task_id: str, model: type, key: str | None = None) -> Any:
        raw = context["ti"].xcom_pull(task_ids=task_id, **({"key": key} if key else {}))
        if raw is None:
            raise ValueError(f"{self.task_id}: no output of task {task_id!r} (key {key or 'return_value'}): "
                             "wire it upstream of this task")
        return model.model_validate(raw)


class IBKRMarketDataOperator(TradingOperator):
    """Fresh snapshots of ``symbols`` (stored in raw.market_snapshots), the account's positions and working
    orders (``tasks.fetch_market_data``). Returns the ``MarketView``; XCom key ``quotes`` holds
    ``{symbol: {field: value}}`` for ``fields`` (last, bid, ask, quote_at, captured_at).

    ``symbols`` None: the run's (the conf's, else the strategy's); with a run already started they must match it.
    """

    template_fields = ("symbols",)

    def __init__(self, *, symbols: Sequence[str] | None = None, fields: Sequence[str] = ("last", "bid", "ask"),
                 **kwargs: Any) -> None:
        kwargs.setdefault("pool", "ibkr_api")
        super().__init__(**kwargs)
        unknown = [f for f in fields if f not in QUOTE_FIELDS]
        if unknown or not fields:
            raise ValueError(f"{self.task_id}: unknown field(s) {unknown or list(fields)}; known: "
                             f"{', '.join(QUOTE_FIELDS)}")
        self.symbols = symbols
        self.fields = tuple(fields)

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from include.settings import parse_symbols
        from include.trading import tasks
        from include.trading.step_metrics import guide_metrics

        wanted = parse_symbols(self.symbols) if self.symbols else None
        run = self.trading_run(context, wanted)
        if wanted and set(wanted) != set(run.symbols):
            raise AirflowFailException(f"{self.task_id}: symbols {list(wanted)} differ from this run's "
                                       f"{list(run.symbols)} (set them in the conf or on the first operator)")
        with guide_metrics("fetch_market_data", run, enabled=self.track_mlflow):
            market = tasks.fetch_market_data(run, context)
        context["ti"].xcom_push(key="quotes", value={
            symbol: {f: getattr(quote, f) for f in self.fields} for symbol, quote in market.quotes.items()})
        return market.model_dump(mode="json")


class LLMSignalGeneratorOperator(TradingOperator):
    """The strategy's signals (BUY/SELL/HOLD with a confidence per symbol) from its configured model, an LLM or a
    rule set (include/config/strategies.yaml): the features and data-quality verdicts of the run's symbols
    (``tasks.read_features``, pushed under XCom key ``features``), then ``tasks.generate_signals``. Returns the
    ``SignalSet``."""

    def execute(self, context: Any) -> dict[str, Any]:
        from include.trading import tasks
        from include.trading.step_metrics import guide_metrics

        run = self.trading_run(context)
        with guide_metrics("read_features", run, enabled=self.track_mlflow):
            features = tasks.read_features(run, context)
        context["ti"].xcom_push(key="features", value=features.model_dump(mode="json"))
        with guide_metrics("generate_signals", run, enabled=self.track_mlflow):
            signals = tasks.generate_signals(features, context)
        return signals.model_dump(mode="json")


class OrderPlacementOperator(TradingOperator):
    """Risk (``tasks.assess_risk``: every limit, positions and working orders, data quality) then the approved
    orders through the intent ledger (``tasks.place_orders``: recorded first, cOID = intent id, re-checked right
    before submission). Reads the ``MarketView`` of ``market_task_id`` and the ``SignalSet`` (and features) of
    ``signals_task_id``; returns the ``OrderOutcome``.

    ``min_confidence`` and ``max_position_size`` (dollars) tighten the strategy's ``risk`` limits for this task,
    never loosen them. ``dry_run=True`` (the default) records orders as simulated, whatever the run's mode;
    ``dry_run=False`` trades in the run's mode (paper, or live with its opt-ins) and refuses a dry-run run.
    """

    template_fields = ("dry_run",)

    def __init__(self, *, min_confidence: float = 0.7, max_position_size: float | None = None,
                 dry_run: bool | str = True, market_task_id: str = "fetch_market_data",
                 signals_task_id: str = "generate_signals", **kwargs: Any) -> None:
        kwargs.setdefault("pool", "ibkr_orders")
        super().__init__(**kwargs)
        if not 0 <= min_confidence <= 1:
            raise ValueError(f"{self.task_id}: min_confidence must be within [0, 1], got {min_confidence!r}")
        if max_position_size is not None and not max_position_size > 0:
            raise ValueError(f"{self.task_id}: max_position_size must be a positive dollar amount")
        self.min_confidence = min_confidence
        self.max_position_size = max_position_size
        self.dry_run = dry_run
        self.market_task_id = market_task_id
        self.signals_task_id = signals_task_id

    def _dry(self) -> bool:
        value = self.dry_run
        return value if isinstance(value, bool) else str(value).strip().lower() in {"1", "true", "yes"}

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from include.trading import tasks
        from include.trading.context import FeatureSet, MarketView, SignalSet
        from include.trading.step_metrics import guide_metrics

        signals = self.pull(context, self.signals_task_id, SignalSet)
        features = self.pull(context, self.signals_task_id, FeatureSet, key="features")
        market = self.pull(context, self.market_task_id, MarketView)
        run = signals.run
        if self.strategy_id is not None and run.strategy_id != self.strategy_id:
            raise AirflowFailException(f"{self.task_id}: strategy_id {self.strategy_id} but this DAG run trades "
                                       f"strategy {run.strategy_id} ({run.strategy})")
        if self._dry() and run.mode != "dry_run":
            self.log.warning("dry_run=True: recording %s's orders as simulated instead of %s", run.strategy, run.mode)
            run = run.model_copy(update={"mode": "dry_run"})
        elif not self._dry() and run.mode == "dry_run":
            raise AirflowFailException(f"{self.task_id}: dry_run=False, but this run is a dry run: trigger it with "
                                       '{"dry_run": false, "mode": "paper"} (live needs the strategy in live mode)')
        signals, features, market = (m.model_copy(update={"run": run}) for m in (signals, features, market))
        limits, changed = tightened_limits(run.strategy_id, self.min_confidence, self.max_position_size)
        if changed:
            self.log.info("risk limits tightened for this task: %s", changed)
            if self.track_mlflow:
                run.mlflow_logger().set_tags({"risk_overrides": changed})
        risk = tasks.assess_risk(signals, market, features, context, limits=limits)
        with guide_metrics("place_orders", run, enabled=self.track_mlflow):
            orders = tasks.place_orders(risk, context, limits=limits)
        return orders.model_dump(mode="json")


def tightened_limits(strategy_id: int, min_confidence: float | None,
                     max_position_size: float | None) -> tuple[RiskLimits, dict[str, float]]:
    """The strategy's risk limits, stricter where the operator asks for it (never looser), validated like the
    strategies file, and what changed (empty: the strategy's own were already as strict)."""
    from include.config import get_strategy
    from include.risk.limits import RiskLimits

    limits = get_strategy(strategy_id).risk
    changed: dict[str, float] = {}
    if min_confidence is not None and min_confidence > limits.min_confidence:
        changed["min_confidence"] = min_confidence
    if max_position_size is not None and max_position_size < limits.max_position_notional:
        changed["max_position_notional"] = max_position_size
        changed["max_order_notional"] = min(limits.max_order_notional, max_position_size)
    return RiskLimits.model_validate({**limits.model_dump(), **changed}), changed
