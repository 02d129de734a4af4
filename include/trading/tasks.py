"""Task bodies of the trading DAGs: typed objects in and out (``include.trading.context``); each logs to the DAG run's
MLflow run, resumed by the id the first task created."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.settings import load_settings
from include.trading.context import (
    FeatureSet,
    MarketView,
    OrderOutcome,
    Quote,
    RiskOutcome,
    SignalSet,
    TradingRun,
    finite_row,
)

if TYPE_CHECKING:
    from include.risk.limits import RiskLimits

log = logging.getLogger(__name__)
MLFLOW_SECONDS_KEY = "mlflow_seconds"  # XCom: time each task spent logging (the end task totals it)
_FAILED = {"failed", "upstream_failed"}
_BROKER_FINAL = {"filled", "cancelled", "apicancelled", "inactive"}


@contextmanager
def _mlflow(context: Any, run: TradingRun) -> Iterator[Any]:
    """The run's ``RunLogger``; the time spent inside is pushed to XCom for the MLflow-share metric."""
    started = time.perf_counter()
    try:
        yield run.mlflow_logger()
    finally:
        context["ti"].xcom_push(key=MLFLOW_SECONDS_KEY, value=time.perf_counter() - started)


def _charts_dir(run: TradingRun) -> Path:
    safe = f"{run.dag_id}__{run.run_id}".replace("/", "_").replace(":", "_")
    return Path(tempfile.gettempdir()) / "ibkr-charts" / safe


def start_run(context: Any) -> TradingRun:
    """Validate the conf, resolve strategy, mode and sessions, open the MLflow run (experiment per strategy)."""
    from include.config import get_strategy, strategy_experiment
    from include.marketdata.calendar import MarketCalendar
    from include.tracking import MLFLOW_RUN_ID_XCOM_KEY, context_ids, run_artifact_uri, start_run
    from include.trading.conf import RunConfError, parse_conf, resolve_mode
    from include.trading.submission import data_session, decision_session

    conf = parse_conf(context["params"])
    try:
        strategy = get_strategy(conf.strategy_id)
    except (KeyError, LookupError, ValueError) as exc:
        raise RunConfError(f"strategy_id {conf.strategy_id}: {exc}") from None
    if not strategy.enabled:
        raise RunConfError(f"strategy {strategy.id} ({strategy.name}) is disabled in include/config/strategies.yaml")
    mode = resolve_mode(conf, strategy.mode)
    settings = load_settings()
    settings.require_live_opt_in(mode, "trading run")  # live: the environment opt-in, before anything else happens
    calendar = MarketCalendar(settings.exchange)
    now = settings.now()
    session = decision_session(calendar, now)
    data = data_session(calendar, now)
    symbols = tuple(conf.symbols or strategy.symbols)
    ids = context_ids(context)
    params = {"strategy_id": strategy.id, "strategy": strategy.name, "signal_model": strategy.signal.model,
              "symbols": ",".join(symbols), "mode": mode, "ignore_market_hours": conf.ignore_market_hours,
              "session": session.isoformat(), "data_session": data.isoformat(),
              **{f"risk.{k}": v for k, v in strategy.risk.model_dump().items()},
              "prompt_version": getattr(strategy.signal, "prompt", None) or "n/a"}
    started = time.perf_counter()
    mlflow_run_id = start_run(strategy_experiment(strategy.name), dag_id=ids["dag_id"], run_id=ids["run_id"],
                              try_number=ids["try_number"], params=params)
    artifact_uri = run_artifact_uri(mlflow_run_id)  # the REST client has it from creating the run
    context["ti"].xcom_push(key=MLFLOW_RUN_ID_XCOM_KEY, value=mlflow_run_id)
    context["ti"].xcom_push(key=MLFLOW_SECONDS_KEY, value=time.perf_counter() - started)
    return TradingRun(dag_id=ids["dag_id"], run_id=ids["run_id"], strategy_id=strategy.id, strategy=strategy.name,
                      mode=mode, symbols=symbols, mlflow_run_id=mlflow_run_id, mlflow_artifact_uri=artifact_uri,
                      ignore_market_hours=conf.ignore_market_hours, started_at=datetime.now(UTC), session=session,
                      data_session=data)


def validate_environment(run: TradingRun) -> dict[str, Any]:
    """Everything the run needs is configured and reachable: market DB, gateway URL, LLM endpoint or ML model.
    The marts need not exist yet: ``backfill_symbols`` builds them for symbols without data (a fresh database)."""
    from include.config import get_strategy
    from include.marketdata.db import connection
    from include.risk.state_store import read_state

    settings = load_settings()
    dsn = settings.require_market_db_url()
    with connection(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")  # reachable, with these credentials
    if not settings.ibkr_gateway_url:
        raise RuntimeError("no IBKR gateway configured (IBKR_GATEWAY_URL or the ibkr_default connection)")
    strategy = get_strategy(run.strategy_id)
    if strategy.signal.model == "llm":
        from include.llm.connection import load_endpoint

        load_endpoint(strategy.signal.connection_id)  # raises with the reason when the connection is missing
    if strategy.signal.model == "ml":
        from include.strategies.ml_signal import require_model

        require_model(strategy.signal)  # no models:/<name>@<alias> in the registry: fail here, not HOLD quietly
    state = read_state(dsn)
    return {"trading_state": state.state, "trading_state_reason": state.reason}


def _working_orders(dsn: str, run: TradingRun, live: list[Any]) -> dict[str, dict[str, float]]:
    """Shares per symbol and side in orders that may still trade: the broker's live orders, plus the ledger's
    intents not (yet) at the broker. This strategy's own decisions for the session are left out: a re-run
    re-identifies them instead of sizing against them."""
    from include.execution.ledger import session_decisions, working_intents
    from include.marketdata.db import connection

    with connection(dsn) as conn:
        mine = {i.coid for i in session_decisions(conn, run.strategy_id, run.session, run.mode)}
        pending = working_intents(conn, run.mode)
    out: dict[str, dict[str, float]] = {}
    at_broker = {o.coid for o in live if o.coid}

    def add(symbol: str, side: str, qty: float) -> None:
        if qty > 0:
            book = out.setdefault(symbol, {"buy": 0.0, "sell": 0.0})
            book[side.lower()] += qty

    for order in live:
        if order.coid in mine or not order.symbol or not order.side:
            continue
        if (order.status or "").replace(" ", "").lower() in _BROKER_FINAL:
            continue
        remaining = order.remaining_quantity
        if remaining is None:
            remaining = (order.total_size or 0.0) - (order.filled_quantity or 0.0)
        add(order.symbol, order.side, float(remaining))
    for intent in pending:
        if intent.coid not in at_broker and intent.coid not in mine:
            add(intent.symbol, intent.side, intent.quantity - intent.filled_quantity)
    return out


def fetch_market_data(run: TradingRun, context: Any) -> MarketView:
    """Fresh snapshots (stored in raw.market_snapshots), the account's positions and working orders."""
    from include.ibkr.hook import IBKRHook
    from include.marketdata.db import connection
    from include.marketdata.ingest import ingest_snapshots
    from include.settings import mask_account

    settings = load_settings()
    dsn = settings.require_market_db_url()
    started = time.perf_counter()
    with IBKRHook().get_conn(settings) as client:
        client.ensure_session()
        # isolate: an unknown ticker or one without data is left out (no quote -> its BUY/SELL is vetoed, and it
        # has no features -> place_orders fails the run naming it); the other symbols are quoted and trade.
        ingest_snapshots(client, dsn, list(run.symbols), run.label, isolate=True)
        account = mask_account(client.account_id)
        positions = {p.symbol: float(p.quantity) for p in client.positions()}
        live = client.live_orders()
        summary = client.account_summary()
    with connection(dsn) as conn, conn.cursor() as cur:
        cur.execute("""SELECT DISTINCT ON (symbol) symbol, to_jsonb(s) FROM raw.market_snapshots s
                       WHERE symbol = ANY(%s) ORDER BY symbol, captured_at DESC""", (list(run.symbols),))
        quotes = {symbol: Quote.model_validate({k: row.get(k) for k in Quote.model_fields}) for symbol, row
                  in cur.fetchall()}
    working = _working_orders(dsn, run, live)
    fetch_s = time.perf_counter() - started
    with _mlflow(context, run) as mlflow_log:
        mlflow_log.log_batch(metrics={"fetch_duration_seconds": fetch_s, "symbols_count": len(run.symbols)})
    return MarketView(run=run, account=account, positions=positions, working=working, quotes=quotes,
                      net_liquidation=summary.net_liquidation, gross_position_value=summary.gross_position_value,
                      fetch_duration_seconds=fetch_s)


def read_features(run: TradingRun, context: Any) -> FeatureSet:
    """The latest features per symbol (and the session before) and each symbol's data-quality verdict for the
    run's data session. A symbol with non-finite numbers or features older than that session is bad (named, only
    it is vetoed); one with no row at all is missing (the run fails naming it, after the others traded)."""
    from include.marketdata.db import connection
    from include.quality.verdicts import session_verdicts
    from include.strategies.features import load_features

    dsn = load_settings().require_market_db_url()
    latest_rows, previous_rows = load_features(dsn, run.symbols)
    with connection(dsn) as conn:
        verdicts = {s: v.as_dict() for s, v in session_verdicts(conn, run.symbols, run.data_session).items()}
    latest, previous, bad, missing = {}, {}, {}, []
    for symbol in run.symbols:
        row = latest_rows.get(symbol)
        if row is None:
            missing.append(symbol)
            continue
        latest[symbol], nonfinite = finite_row(row)
        if symbol in previous_rows:
            previous[symbol], before = finite_row(previous_rows[symbol])
            nonfinite += [f"{name} (previous session)" for name in before]
        day = row.get("session_date")
        if nonfinite:
            bad[symbol] = f"{symbol}: non-finite {', '.join(nonfinite)} in the features of {day}"
        elif day is not None and day < run.data_session:
            bad[symbol] = (f"{symbol}: latest features are for {day}, not the last completed session "
                           f"{run.data_session} (ingestion or dbt behind)")
    for symbol, why in bad.items():
        verdict = verdicts[symbol]
        verdicts[symbol] = {**verdict, "verdict": "fail", "reasons": [why, *verdict.get("reasons", [])]}
        log.warning("data veto: %s", why)
    if missing:
        log.error("no feature row for %s in analytics_marts.fct_latest_features", ", ".join(missing))
    points = sum(len(r) for r in latest.values()) + sum(len(r) for r in previous.values())
    with _mlflow(context, run) as mlflow_log:
        mlflow_log.log_batch(metrics={"data_points": points, "dq_failed_symbols": sum(
            v["verdict"] == "fail" for v in verdicts.values()), "missing_symbols": len(missing)})
        mlflow_log.log_dict({"verdicts": verdicts, "bad": bad, "missing": missing}, "data_quality/verdicts.json")
    return FeatureSet(run=run, latest=latest, previous=previous, verdicts=verdicts, missing=tuple(missing), bad=bad,
                      data_points=points)


def generate_signals(features: FeatureSet, context: Any) -> SignalSet:
    """One BUY/SELL/HOLD per symbol from the strategy (pure: no broker calls); LLM traces go to MLflow."""
    from include.config import get_strategy
    from include.strategies.registry import build_strategy, generate_signals

    run = features.run
    config = get_strategy(run.strategy_id)
    endpoint = None
    if config.signal.model == "llm":
        from include.llm.connection import load_endpoint

        endpoint = load_endpoint(config.signal.connection_id)
    strategy = build_strategy(config, llm_endpoint=endpoint)
    try:
        signals = generate_signals(strategy, run.symbols, features.latest, features.previous)
    finally:
        getattr(strategy, "close", lambda: None)()
    out = [s.to_dict() for s in signals]
    confidences = [s["confidence"] for s in out]
    with _mlflow(context, run) as mlflow_log:
        mlflow_log.log_batch(metrics={
            **{f"signal_confidence.{s['symbol']}": s["confidence"] for s in out},
            "signal_confidence": sum(confidences) / len(confidences) if confidences else 0.0,
        })  # fmt: skip
        mlflow_log.log_dict([{k: v for k, v in s.items() if k != "trace"} for s in out], "signals/signals.json")
        mlflow_log.log_rows_sample(["symbol", "action", "confidence", "rationale"],
                                   [(s["symbol"], s["action"], s["confidence"], s["rationale"]) for s in out],
                                   "signals/signals.csv")
        for s in out:
            if s.get("trace"):
                mlflow_log.log_dict(s["trace"], f"llm/{s['symbol']}.json")
    return SignalSet(run=run, signals=tuple({k: v for k, v in s.items() if k != "trace"} for s in out))


def render_charts(signals: SignalSet, context: Any) -> list[str]:
    """A PNG per symbol (candles, SMA/Bollinger, volume, RSI, MACD, the signal), logged under charts/."""
    from include.marketdata.db import connection
    from include.trading.charts import ChartRenderer, load_history

    run = signals.run
    folder = _charts_dir(run)
    made = []
    renderer = ChartRenderer()
    with connection(load_settings().require_market_db_url()) as conn:
        for signal in signals.signals:
            rows = load_history(conn, signal["symbol"])
            if rows:
                made.append(renderer.render(signal["symbol"], rows, {**signal, "strategy": run.strategy},
                                            folder / f"{signal['symbol']}.png"))
    with _mlflow(context, run) as mlflow_log:
        for path in made:
            mlflow_log.log_file(path, "charts")
    return [p.name for p in made]


def _usable_prices(market: MarketView, max_age_s: float, now: datetime) -> tuple[dict[str, float], dict[str, str]]:
    """Last prices from fresh quotes only (never the signal's own close); why each other symbol has none."""
    prices, notes = {}, {}
    for symbol in market.run.symbols:
        quote = market.quotes.get(symbol)
        if quote is None or quote.last is None or quote.last <= 0:
            notes[symbol] = "no quote with a last price"
        elif market.run.ignore_market_hours:  # dry run outside hours: the last close is the price to show
            prices[symbol] = quote.last
        elif quote.quote_at is None:
            notes[symbol] = "the snapshot carries no timestamp (_updated): not shown to be fresh"
        elif (now - quote.quote_at).total_seconds() > max_age_s:
            notes[symbol] = (f"the quote is {(now - quote.quote_at).total_seconds():.0f} s old "
                             f"(max_quote_age_seconds {max_age_s:g})")
        else:
            prices[symbol] = quote.last
    return prices, notes


def assess_risk(signals: SignalSet, market: MarketView, features: FeatureSet, context: Any,
                limits: RiskLimits | None = None) -> RiskOutcome:
    """Every limit on every BUY/SELL, against positions AND working orders; approved orders carry quantity and limit
    price; every veto its reason. A symbol with bad data is vetoed whatever its signal."""
    from include.config import get_strategy
    from include.execution.ledger import orders_today, strategy_fills
    from include.marketdata.db import connection
    from include.risk import assess
    from include.risk.checks import DEFAULT_CHECKS, ProtectionGate
    from include.risk.models import CheckResult, RiskDecision
    from include.risk.protections import evaluate_live
    from include.risk.state_store import read_state

    run = signals.run
    settings = load_settings()
    dsn = settings.require_market_db_url()
    strategy = get_strategy(run.strategy_id)
    with connection(dsn) as conn:
        fills = strategy_fills(conn, strategy.id, run.mode)
        today = orders_today(conn, run.mode, strategy_id=strategy.id, session=run.session)
    live = evaluate_live(dsn, strategy, fills, mode=run.mode, dag_id=run.dag_id, run_id=run.run_id)
    if live and live.new:
        from include.alerts.events import protection_alerts

        protection_alerts(live.new, strategy=strategy, mode=run.mode, dag_id=run.dag_id, run_id=run.run_id)
    limits = limits or strategy.risk  # an operator may pass stricter limits (never looser: see operators.py)
    prices, notes = _usable_prices(market, limits.max_quote_age_seconds, settings.now())
    report = assess(
        signals.signals, limits=limits, mode=run.mode, account_id=market.account,
        trading_state=read_state(dsn).state, positions=market.positions, working=market.working,
        last_prices=prices, price_notes=notes, orders_today=today, verdicts=features.verdicts,
        market_open=True if run.ignore_market_hours else None, now=settings.now(),
        net_liquidation=market.net_liquidation, gross_position_value=market.gross_position_value,
        checks=(*DEFAULT_CHECKS, ProtectionGate(live.status if live else None)),
    )
    decisions = []
    for decision in report.decisions:
        why = features.bad.get(decision.symbol)
        if why:  # bad data is a veto, whatever the strategy made of it (an approved order included)
            veto = CheckResult(check="data_quality", approved=False, reason=why)
            dumped = decision.model_dump()
            decision = RiskDecision.model_validate({
                **dumped, "status": "vetoed", "approved": False, "quantity": 0, "notional": 0.0,
                "vetoes": [veto, *dumped.get("vetoes", [])],
                "checks": [veto, *dumped.get("checks", [])]})
        decisions.append(decision.to_dict())
    result = report.to_dict()
    result["decisions"] = decisions
    result["protections"] = live.status.events() if live else []
    vetoes = [d for d in decisions if d["status"] == "vetoed"]
    with _mlflow(context, run) as mlflow_log:
        mlflow_log.log_batch(metrics={"vetoes": len(vetoes), "approved_orders": len(report.approved)})
        mlflow_log.log_dict(result, "risk/risk_report.json")
    for d in vetoes:
        log.warning("risk veto %s %s: %s", d["action"], d["symbol"], "; ".join(v["reason"] for v in d["vetoes"]))
    if vetoes:  # one alert per run (never raises)
        from include.alerts.events import risk_veto_alert

        risk_veto_alert(vetoes, dag_id=run.dag_id, run_id=run.run_id, strategy=run.strategy, mode=run.mode)
    return RiskOutcome(run=run, decisions=tuple(decisions), signals={s["symbol"]: s for s in signals.signals},
                       verdicts=features.verdicts, missing=features.missing)


def place_orders(risk: RiskOutcome, context: Any, limits: RiskLimits | None = None) -> OrderOutcome:
    """Approved decisions -> order intents, one per (strategy, symbol, session, mode), persisted before submission
    (cOID = intent id) and re-checked right before it (``SubmissionChecks``). dry_run records them as simulated and
    never calls an order endpoint. Rejected/failed/unknown intents of this run fail the task (and alert once each);
    symbols without any data fail it too, after the others were handled."""
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    from include.config import get_strategy
    from include.execution import OrderExecutionError, OrderPlan, RunContext, execute_intents
    from include.risk.models import RiskDecision
    from include.trading.submission import SubmissionChecks

    run = risk.run
    settings = load_settings()
    dsn = settings.require_market_db_url()
    strategy = get_strategy(run.strategy_id)
    plans = [OrderPlan.from_decision(decision, session_date=run.session, signal=risk.signals.get(decision.symbol),
                                     dq=risk.verdicts.get(decision.symbol))
             for decision in (RiskDecision.model_validate(d) for d in risk.approved)]
    ctx = RunContext(dag_id=run.dag_id, run_id=run.run_id, mode=run.mode,
                     try_number=int(context["ti"].try_number or 1), mlflow_run_id=run.mlflow_run_id)
    failure: OrderExecutionError | None = None
    try:
        if run.mode == "dry_run" or not plans:
            gate = SubmissionChecks(run, limits or strategy.risk, now=settings.now)
            report = execute_intents(plans, ctx, dsn=dsn, gate=gate)
        else:
            from include.ibkr.hook import IBKRHook
            from include.marketdata.db import connection
            from include.marketdata.ingest import seed_contracts

            with IBKRHook().get_conn(settings) as client:
                client.ensure_session()
                with connection(dsn) as conn:  # conids fetch_market_data (or ingestion) resolved: no second look-up
                    known = seed_contracts(client, conn, [p.symbol for p in plans])
                gate = SubmissionChecks(run, limits or strategy.risk, now=settings.now, broker=client)
                gate.prefetch_quotes(list(known.values()))  # one snapshot request for the batch
                report = execute_intents(plans, ctx, dsn=dsn, broker=client, gate=gate)
    except OrderExecutionError as exc:
        failure, report = exc, exc.report
    intents = [{"intent_id": i.intent_id, "symbol": i.symbol, "side": i.side, "quantity": float(i.quantity),
                "limit_price": i.limit_price, "status": i.status, "broker_order_id": i.broker_order_id,
                "session_date": i.session_date.isoformat() if i.session_date else None,
                "decided_by": f"{i.dag_id}/{i.run_id}", "last_error": i.last_error}
               for i in report.intents]
    mine = [i for i in intents if i["intent_id"] not in report.skipped]
    metrics = {"order_quantity": sum(i["quantity"] for i in mine),
               "order_value": sum(i["quantity"] * (i["limit_price"] or 0) for i in mine),
               "orders": len(mine), "orders_vetoed_at_submission": len(report.vetoed),
               "orders_failed": len(failure.failures) if failure else 0}
    problems = {"failures": [f.describe() for f in failure.failures] if failure else [],
                "vetoed_at_submission": report.vetoed, "missing_symbols": list(risk.missing)}
    with _mlflow(context, run) as mlflow_log:
        tags = {"order_failures": json.dumps(problems["failures"])[:4500]} if failure else {}
        mlflow_log.log_batch(metrics=metrics, tags=tags)
        mlflow_log.log_dict({"counts": report.counts(), "intents": intents, **problems}, "orders/orders.json")
    from include.alerts.events import order_alerts

    order_alerts(report, failure, dag_id=run.dag_id, run_id=run.run_id, strategy=run.strategy, mode=run.mode)
    if failure is not None:
        error = AirflowException(str(failure)) if failure.retryable else AirflowFailException(str(failure))
        error.alerted = True  # type: ignore[attr-defined]  # order_rejected alerts went out: no generic one too
        raise error from failure  # AirflowFailException: rejected/failed, a retry cannot change the answer
    if risk.missing:
        raise AirflowFailException(
            f"no features for {', '.join(risk.missing)} in analytics_marts.fct_latest_features: ingest their bars "
            "(ibkr_ingest_daily_bars) and run market_data_models; the other symbols were handled"
        )
    return OrderOutcome(run=run, counts=report.counts(), intents=tuple(intents),
                        order_quantity=metrics["order_quantity"], order_value=metrics["order_value"])


def end_run(run: TradingRun | None, context: Any) -> str | None:
    """Close the MLflow run FAILED if any task of this DAG run failed, else FINISHED; log the MLflow share."""
    from include.tracking import RunLogger, end_run

    ti = context["ti"]
    mlflow_run_id = run.mlflow_run_id if run else ti.xcom_pull(task_ids="start_mlflow_run", key="mlflow_run_id")
    if not mlflow_run_id:
        return None  # the first task failed before creating a run: nothing to close
    states = ti.get_task_states(dag_id=context["dag"].dag_id, run_ids=[context["run_id"]])
    mine = states.get(context["run_id"], {})
    failed = sorted(t for t, s in mine.items() if s in _FAILED and t != ti.task_id)
    logged = [v for v in ti.xcom_pull(task_ids=list(mine) or None, key=MLFLOW_SECONDS_KEY) or [] if v]
    status = "failed" if failed else "success"
    started = time.perf_counter()
    end_run(mlflow_run_id, status)
    if run is not None:
        # Logged after the run's end (MLflow takes metrics on a finished run), so the share counts this task's own
        # calls too: all but this last batch.
        total = (datetime.now(UTC) - run.started_at).total_seconds()
        spent = sum(logged) + (time.perf_counter() - started)
        RunLogger(mlflow_run_id).log_batch(metrics={"run_seconds": total, "mlflow_seconds": spent,
                                                    "mlflow_share": spent / total if total > 0 else 0.0},
                                           tags={"failed_tasks": json.dumps(failed)})
    return status


def cleanup(run: TradingRun | None) -> None:
    """Remove this run's temporary chart files (they are in MLflow)."""
    if run:
        shutil.rmtree(_charts_dir(run), ignore_errors=True)
