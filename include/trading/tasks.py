"""Task bodies of the trading DAGs: each reads the Airflow context, calls the core packages and logs to the DAG
run's MLflow run, resumed by the id the first task created (passed through XCom; no per-process globals)."""

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
from typing import Any

from include.settings import load_settings

log = logging.getLogger(__name__)
MLFLOW_SECONDS_KEY = "mlflow_seconds"  # XCom: time each task spent logging (the end task totals it)
_FAILED = {"failed", "upstream_failed"}


@contextmanager
def _mlflow(context: Any, run: dict[str, Any]) -> Iterator[Any]:
    """The run's ``RunLogger``; the time spent inside is pushed to XCom for the MLflow-share metric."""
    from include.tracking import RunLogger

    started = time.perf_counter()
    try:
        yield RunLogger(run["mlflow_run_id"])
    finally:
        context["ti"].xcom_push(key=MLFLOW_SECONDS_KEY, value=time.perf_counter() - started)


def _charts_dir(run: dict[str, Any]) -> Path:
    safe = f"{run['dag_id']}__{run['run_id']}".replace("/", "_").replace(":", "_")
    return Path(tempfile.gettempdir()) / "ibkr-charts" / safe


def start_run(context: Any) -> dict[str, Any]:
    """Validate the conf, resolve strategy and mode, open the MLflow run (experiment per strategy)."""
    from include.config import get_strategy
    from include.risk import require_live_opt_in
    from include.tracking import MLFLOW_RUN_ID_XCOM_KEY, context_ids, start_run
    from include.trading.conf import RunConfError, parse_conf, resolve_mode

    conf = parse_conf(context["params"])
    try:
        strategy = get_strategy(conf.strategy_id)
    except (KeyError, LookupError, ValueError) as exc:
        raise RunConfError(f"strategy_id {conf.strategy_id}: {exc}") from None
    if not strategy.enabled:
        raise RunConfError(f"strategy {strategy.id} ({strategy.name}) is disabled in include/config/strategies.yaml")
    mode = resolve_mode(conf, strategy.mode)
    require_live_opt_in(mode)  # live: the environment opt-in, before anything else happens
    symbols = list(conf.symbols or strategy.symbols)
    ids = context_ids(context)
    params = {"strategy_id": strategy.id, "strategy": strategy.name, "signal_model": strategy.signal.model,
              "symbols": ",".join(symbols), "mode": mode, "ignore_market_hours": conf.ignore_market_hours,
              **{f"risk.{k}": v for k, v in strategy.risk.model_dump().items()},
              "prompt_version": getattr(strategy.signal, "prompt", None) or "n/a"}
    started = time.perf_counter()
    mlflow_run_id = start_run(f"ibkr-strategy-{strategy.name}", dag_id=ids["dag_id"], run_id=ids["run_id"],
                              try_number=ids["try_number"], params=params)
    context["ti"].xcom_push(key=MLFLOW_RUN_ID_XCOM_KEY, value=mlflow_run_id)
    context["ti"].xcom_push(key=MLFLOW_SECONDS_KEY, value=time.perf_counter() - started)
    return {"mlflow_run_id": mlflow_run_id, "dag_id": ids["dag_id"], "run_id": ids["run_id"],
            "strategy_id": strategy.id, "strategy": strategy.name, "symbols": symbols, "mode": mode,
            "ignore_market_hours": conf.ignore_market_hours, "started_at": datetime.now(UTC).isoformat()}


def validate_environment(run: dict[str, Any]) -> dict[str, Any]:
    """Everything the run needs is configured and reachable: market DB and marts, gateway URL, LLM endpoint."""
    from include.config import get_strategy
    from include.marketdata.db import connection
    from include.risk.state_store import read_state

    settings = load_settings()
    dsn = settings.require_market_db_url()
    with connection(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('analytics_marts.fct_latest_features') IS NOT NULL")
        if not cur.fetchone()[0]:
            raise RuntimeError("analytics_marts.fct_latest_features does not exist: run ingestion and the "
                               "market_data_models DAG (dbt) before trading")
    if not settings.ibkr_gateway_url:
        raise RuntimeError("no IBKR gateway configured (IBKR_GATEWAY_URL or the ibkr_default connection)")
    strategy = get_strategy(run["strategy_id"])
    if strategy.signal.model == "llm":
        from include.llm.connection import load_endpoint

        load_endpoint(strategy.signal.connection_id)  # raises with the reason when the connection is missing
    if strategy.signal.model == "ml":
        from include.strategies.ml_signal import require_model

        require_model(strategy.signal)  # no models:/<name>@<alias> in the registry: fail here, not HOLD quietly
    state = read_state(dsn)
    return {"trading_state": state.state, "trading_state_reason": state.reason}


def fetch_market_data(run: dict[str, Any], context: Any) -> dict[str, Any]:
    """Fresh snapshots (stored in raw.market_snapshots) and the account: positions, net liquidation."""
    from include.ibkr.hook import IBKRHook
    from include.marketdata.db import connection
    from include.marketdata.ingest import ingest_snapshots

    settings = load_settings()
    dsn = settings.require_market_db_url()
    started = time.perf_counter()
    with IBKRHook().get_conn(settings) as client:
        client.ensure_session()
        ingest_snapshots(client, dsn, run["symbols"], f"{run['dag_id']}/{run['run_id']}")
        account_id = client.account_id
        positions = {p.symbol: {"quantity": p.quantity, "avg_cost": p.avg_cost} for p in client.positions()}
        summary = client.account_summary()
    with connection(dsn) as conn, conn.cursor() as cur:
        cur.execute("""SELECT DISTINCT ON (symbol) symbol, last, bid, ask, captured_at FROM raw.market_snapshots
                       WHERE symbol = ANY(%s) ORDER BY symbol, captured_at DESC""", (run["symbols"],))
        quotes = {s: {"last": last, "bid": bid, "ask": ask, "captured_at": at.isoformat()}
                  for s, last, bid, ask, at in cur.fetchall()}
    fetch_s = time.perf_counter() - started
    with _mlflow(context, run) as mlflow_log:
        mlflow_log.log_batch(metrics={"fetch_duration_seconds": fetch_s, "symbols_count": len(run["symbols"])})
    return {"account_id": account_id, "positions": positions, "quotes": quotes,
            "net_liquidation": summary.net_liquidation, "gross_position_value": summary.gross_position_value,
            "fetch_duration_seconds": fetch_s}


def read_features(run: dict[str, Any], context: Any) -> dict[str, Any]:
    """The latest features per symbol (and the session before), and each symbol's data-quality verdict."""
    from include.marketdata.db import connection
    from include.quality.verdicts import latest_verdicts
    from include.strategies.features import json_ready, load_features

    dsn = load_settings().require_market_db_url()
    latest, previous = load_features(dsn, run["symbols"])
    with connection(dsn) as conn:
        verdicts = {s: v.as_dict() for s, v in latest_verdicts(conn, run["symbols"]).items()}
    points = sum(len(r) for r in latest.values()) + sum(len(r) for r in previous.values())
    with _mlflow(context, run) as mlflow_log:
        mlflow_log.log_batch(metrics={"data_points": points,
                               "dq_failed_symbols": sum(v["verdict"] == "fail" for v in verdicts.values())})
        mlflow_log.log_dict(verdicts, "data_quality/verdicts.json")
    return {"latest": {s: json_ready(r) for s, r in latest.items()},
            "previous": {s: json_ready(r) for s, r in previous.items()}, "verdicts": verdicts}


def generate_signals(run: dict[str, Any], features: dict[str, Any], context: Any) -> list[dict[str, Any]]:
    """One BUY/SELL/HOLD per symbol from the strategy (pure: no broker calls); LLM traces go to MLflow."""
    from include.config import get_strategy
    from include.strategies.registry import build_strategy, generate_signals

    config = get_strategy(run["strategy_id"])
    endpoint = None
    if config.signal.model == "llm":
        from include.llm.connection import load_endpoint

        endpoint = load_endpoint(config.signal.connection_id)
    strategy = build_strategy(config, llm_endpoint=endpoint)
    try:
        signals = generate_signals(strategy, run["symbols"], features["latest"], features["previous"])
    finally:
        getattr(strategy, "close", lambda: None)()
    out = [s.to_dict() for s in signals]
    with _mlflow(context, run) as mlflow_log:
        mlflow_log.log_batch(metrics={f"signal_confidence.{s['symbol']}": s["confidence"] for s in out})
        mlflow_log.log_dict([{k: v for k, v in s.items() if k != "trace"} for s in out], "signals/signals.json")
        mlflow_log.log_rows_sample(["symbol", "action", "confidence", "rationale"],
                            [(s["symbol"], s["action"], s["confidence"], s["rationale"]) for s in out],
                            "signals/signals.csv")
        for s in out:
            if s.get("trace"):
                mlflow_log.log_dict(s["trace"], f"llm/{s['symbol']}.json")
    return [{k: v for k, v in s.items() if k != "trace"} for s in out]


def render_charts(run: dict[str, Any], signals: list[dict[str, Any]], context: Any) -> list[str]:
    """A PNG per symbol (candles, SMA/Bollinger, volume, RSI, MACD, the signal), logged under charts/."""
    from include.marketdata.db import connection
    from include.trading.charts import load_history, render_chart

    folder = _charts_dir(run)
    made = []
    with connection(load_settings().require_market_db_url()) as conn:
        for signal in signals:
            rows = load_history(conn, signal["symbol"])
            if rows:
                made.append(render_chart(signal["symbol"], rows, {**signal, "strategy": run["strategy"]},
                                         folder / f"{signal['symbol']}.png"))
    with _mlflow(context, run) as mlflow_log:
        for path in made:
            mlflow_log.log_file(path, "charts")
    return [p.name for p in made]


def _orders_today(dsn: str, run: dict[str, Any]) -> int:
    """Orders this mode already placed today (UTC) in other runs; a re-run does not count its own twice."""
    from include.marketdata.db import connection

    with connection(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('trading.order_intents') IS NOT NULL")
        if not cur.fetchone()[0]:
            return 0
        cur.execute("""SELECT count(*) FROM trading.order_intents
                       WHERE mode = %s AND created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                         AND status NOT IN ('rejected', 'failed', 'cancelled')
                         AND NOT (dag_id = %s AND run_id = %s)""", (run["mode"], run["dag_id"], run["run_id"]))
        count = cur.fetchone()[0]
    return count


def assess_risk(run: dict[str, Any], signals: list[dict[str, Any]], market: dict[str, Any],
                features: dict[str, Any], context: Any) -> dict[str, Any]:
    """Every limit on every BUY/SELL; approved orders carry quantity and limit price; every veto its reason."""
    from include.config import get_strategy
    from include.execution.ledger import strategy_fills
    from include.marketdata.db import connection
    from include.risk import assess
    from include.risk.checks import DEFAULT_CHECKS, ProtectionGate
    from include.risk.protections import evaluate_live
    from include.risk.state_store import read_state

    dsn = load_settings().require_market_db_url()
    strategy = get_strategy(run["strategy_id"])
    # Per-strategy protections from the order ledger (REDUCING after max drawdown, loss-streak cooldowns).
    with connection(dsn) as conn:
        fills = strategy_fills(conn, strategy.id, run["mode"])
    live = evaluate_live(dsn, strategy, fills, mode=run["mode"], dag_id=run["dag_id"], run_id=run["run_id"])
    protections = live.status if live else None
    if live and live.new:
        from include.alerts.events import protection_alerts

        protection_alerts(live.new, strategy=strategy, mode=run["mode"], dag_id=run["dag_id"], run_id=run["run_id"])
    last_prices = {s: q["last"] for s, q in market["quotes"].items() if q.get("last")}
    for symbol, row in features["latest"].items():  # no fresh quote: the last close
        last_prices.setdefault(symbol, row.get("close"))
    report = assess(
        signals, limits=strategy.risk, mode=run["mode"], account_id=market["account_id"],
        trading_state=read_state(dsn).state, positions=market["positions"], last_prices=last_prices,
        orders_today=_orders_today(dsn, run), verdicts=features["verdicts"],
        market_open=True if run["ignore_market_hours"] else None,
        net_liquidation=market["net_liquidation"], gross_position_value=market["gross_position_value"],
        checks=(*DEFAULT_CHECKS, ProtectionGate(protections)),
    )
    result = report.to_dict()
    result["protections"] = protections.events() if protections else []
    vetoes = [d for d in result["decisions"] if d["status"] == "vetoed"]
    with _mlflow(context, run) as mlflow_log:
        mlflow_log.log_batch(metrics={"vetoes": len(vetoes), "approved_orders": len(report.approved)})
        mlflow_log.log_dict(result, "risk/risk_report.json")
    for d in vetoes:
        log.warning("risk veto %s %s: %s", d["action"], d["symbol"], "; ".join(v["reason"] for v in d["vetoes"]))
    if vetoes:  # one alert per run (never raises)
        from include.alerts.events import risk_veto_alert

        risk_veto_alert(vetoes, dag_id=run["dag_id"], run_id=run["run_id"], strategy=run.get("strategy"),
                        mode=run.get("mode"))
    return result


def place_orders(run: dict[str, Any], risk: dict[str, Any], signals: list[dict[str, Any]],
                 features: dict[str, Any], context: Any) -> dict[str, Any]:
    """Approved decisions -> order intents (persisted before submission, cOID = intent id). dry_run records
    them as simulated and never calls an order endpoint; paper/live submit, reconciling first on retries."""
    from include.execution import OrderPlan, RunContext, execute_intents
    from include.risk.models import RiskDecision

    settings = load_settings()
    by_symbol = {s["symbol"]: s for s in signals}
    plans = [
        OrderPlan.from_decision(decision, signal=by_symbol.get(decision.symbol),
                                dq=features["verdicts"].get(decision.symbol))
        for decision in (RiskDecision.model_validate(d) for d in risk["decisions"]) if decision.approved
    ]
    ctx = RunContext(dag_id=run["dag_id"], run_id=run["run_id"], mode=run["mode"],
                     try_number=int(context["ti"].try_number or 1), mlflow_run_id=run["mlflow_run_id"])
    dsn = settings.require_market_db_url()
    if run["mode"] == "dry_run" or not plans:
        report = execute_intents(plans, ctx, dsn=dsn)
    else:
        from include.ibkr.hook import IBKRHook

        with IBKRHook().get_conn(settings) as client:
            client.ensure_session()
            report = execute_intents(plans, ctx, dsn=dsn, broker=client)
    intents = [{"intent_id": i.intent_id, "symbol": i.symbol, "side": i.side, "quantity": float(i.quantity),
                "limit_price": i.limit_price, "status": i.status, "broker_order_id": i.broker_order_id}
               for i in report.intents]
    metrics = {"order_quantity": sum(i["quantity"] for i in intents),
               "order_value": sum(i["quantity"] * (i["limit_price"] or 0) for i in intents),
               "orders": len(intents)}
    with _mlflow(context, run) as mlflow_log:
        mlflow_log.log_batch(metrics=metrics)
        mlflow_log.log_dict({"counts": report.counts(), "intents": intents}, "orders/orders.json")
    return {"counts": report.counts(), "intents": intents, **metrics}


def end_run(run: dict[str, Any] | None, context: Any) -> str | None:
    """Close the MLflow run FAILED if any task of this DAG run failed, else FINISHED; log the MLflow share."""
    from include.tracking import RunLogger, end_run

    ti = context["ti"]
    mlflow_run_id = (run or {}).get("mlflow_run_id") or ti.xcom_pull(task_ids="start_mlflow_run",
                                                                     key="mlflow_run_id")
    if not mlflow_run_id:
        return None  # the first task failed before creating a run: nothing to close
    states = ti.get_task_states(dag_id=context["dag"].dag_id, run_ids=[context["run_id"]])
    mine = states.get(context["run_id"], {})
    failed = sorted(t for t, s in mine.items() if s in _FAILED and t != ti.task_id)
    started = time.perf_counter()
    logged = [v for v in ti.xcom_pull(task_ids=list(mine) or None, key=MLFLOW_SECONDS_KEY) or [] if v]
    if run and run.get("started_at"):
        total = (datetime.now(UTC) - datetime.fromisoformat(run["started_at"])).total_seconds()
        spent = sum(logged) + (time.perf_counter() - started)
        logger = RunLogger(mlflow_run_id)
        logger.log_batch(metrics={"run_seconds": total, "mlflow_seconds": spent,
                                  "mlflow_share": spent / total if total > 0 else 0.0},
                         tags={"failed_tasks": json.dumps(failed)})
    status = "failed" if failed else "success"
    end_run(mlflow_run_id, status)
    return status


def cleanup(run: dict[str, Any] | None) -> None:
    """Remove this run's temporary chart files (they are in MLflow)."""
    if run:
        shutil.rmtree(_charts_dir(run), ignore_errors=True)
