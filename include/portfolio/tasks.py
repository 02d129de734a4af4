"""Task bodies of ``ibkr_portfolio_monitor``: snapshot the account, reconcile it with the ledger, and log the
run's portfolio figures and reconciliation report to MLflow (experiment ``ibkr-portfolio``)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from include.settings import load_settings, mask_account

log = logging.getLogger(__name__)
EXPERIMENT = "ibkr-portfolio"
_FAILED = {"failed", "upstream_failed"}


def _run_key(context: Any) -> str:
    from include.marketdata.tasks import run_key

    return run_key(context)


def _changed_by(context: Any) -> str:
    return f"airflow:{context['dag'].dag_id}/{context['run_id']}"


def snapshot(context: Any) -> dict[str, Any]:
    """Gateway -> raw.portfolio_* / account_* / broker_* in one transaction (the ledger's open intents refreshed
    on the way). An unreachable gateway fails the task: nothing is made up."""
    from include.ibkr.hook import IBKRHook
    from include.portfolio.loaders import fetch_snapshot, load_snapshot

    settings = load_settings()
    dsn = settings.require_market_db_url()
    with IBKRHook().get_conn(settings) as client:
        client.ensure_session()
        snap = fetch_snapshot(client, dsn, _run_key(context))
    counts = load_snapshot(dsn, snap)
    account = mask_account(snap.account_id)  # the full id stays in raw.* where it is needed
    log.info("portfolio snapshot %s of %s: %s", snap.run_key, account, counts)
    return {"run_key": snap.run_key, "account": account, "snapshot_at": snap.snapshot_at.isoformat(), **counts}


def reconcile(snap: dict[str, Any], context: Any) -> dict[str, Any]:
    """Broker vs ledger; any mismatch halts trading and alerts (``reconciliation.run_reconciliation``).
    Param ``accept_baseline`` first records today's unexplained holdings as the accepted baseline."""
    from include.portfolio.reconciliation import accept_baseline, run_reconciliation

    params, dsn = context["params"], load_settings().require_market_db_url()
    if params.get("accept_baseline"):
        accepted = accept_baseline(dsn, snap["run_key"], params.get("baseline_reason") or "", _changed_by(context))
        log.warning("accepted reconciliation baseline %s", accepted)
    result = run_reconciliation(
        dsn, snap["run_key"], changed_by=_changed_by(context), dag_id=context["dag"].dag_id,
        run_id=context["run_id"], grace=timedelta(seconds=float(params.get("grace_seconds", 120))),
    )  # fmt: skip
    if result["mismatch_count"]:
        log.error("reconciliation: %d mismatch(es), trading state %s -> %s", result["mismatch_count"],
                  result["state_before"], result["state_after"])
    return result


def _portfolio_figures(dsn: str, run_key: str) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Latest exposure/P&L totals, equity and drawdown, and the per-symbol P&L rows from the dbt marts, for the
    account of the snapshot ``run_key``."""
    from include.marketdata.db import connection

    metrics: dict[str, float] = {}
    with connection(dsn) as conn, conn, conn.cursor() as cur:
        cur.execute("SELECT account_id FROM raw.account_summary WHERE run_key = %s LIMIT 1", (run_key,))
        found = cur.fetchone()
        if found is None:
            raise LookupError(f"no account summary for snapshot {run_key}")
        (account_id,) = found
        cur.execute(
            "SELECT equity, cash, gross_exposure, net_exposure, long_exposure, short_exposure, gross_leverage,"
            " realized_pnl, unrealized_pnl, total_pnl, positions FROM analytics_marts.fct_portfolio_exposure"
            " WHERE account_id = %s ORDER BY snapshot_at DESC LIMIT 1", (account_id,))
        row = cur.fetchone()
        if row:
            metrics.update({d.name: v for d, v in zip(cur.description, row, strict=True) if v is not None})
        cur.execute("SELECT drawdown_pct, max_drawdown_pct, daily_return FROM analytics_marts.fct_daily_equity"
                    " WHERE account_id = %s ORDER BY equity_date DESC LIMIT 1", (account_id,))
        row = cur.fetchone()
        if row:
            metrics.update({d.name: v for d, v in zip(cur.description, row, strict=True) if v is not None})
        cur.execute("SELECT * FROM analytics_marts.fct_portfolio_pnl WHERE account_id = %s ORDER BY symbol",
                    (account_id,))
        names = [d.name for d in cur.description]
        symbols = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    for s in symbols:
        metrics[f"unrealized_pnl.{s['symbol']}"] = s["unrealized_pnl"]
        metrics[f"realized_pnl.{s['symbol']}"] = s["realized_pnl"]
    return {k: float(v) for k, v in metrics.items()}, symbols


def log_run(snap: dict[str, Any] | None, recon: dict[str, Any] | None, context: Any) -> str:
    """One MLflow run per DAG run: equity, P&L, exposure, drawdown, mismatches; the reconciliation report and
    per-symbol P&L as artifacts. FAILED when any task of the run failed (the marts may then be stale)."""
    from include.tracking import RunLogger, context_ids, end_run, start_run

    ti, ids = context["ti"], context_ids(context)
    states = ti.get_task_states(dag_id=ids["dag_id"], run_ids=[ids["run_id"]]).get(ids["run_id"], {})
    failed = sorted(t for t, s in states.items() if s in _FAILED and t != ti.task_id)
    mlflow_run_id = start_run(EXPERIMENT, **ids, params={"account": (snap or {}).get("account", "unknown")})
    logger = RunLogger(mlflow_run_id)
    metrics: dict[str, float] = {}
    symbols: list[dict[str, Any]] = []
    if snap:
        metrics.update({f"rows.{k}": v for k, v in snap.items() if isinstance(v, int)})
        try:
            figures, symbols = _portfolio_figures(load_settings().require_market_db_url(), snap["run_key"])
            metrics.update(figures)
        except Exception as exc:  # e.g. the marts were never built because dbt failed: log what we have
            log.warning("portfolio marts unavailable: %s", exc)
            failed = failed or ["dbt_portfolio"]
    if recon:
        metrics["mismatches"] = recon["mismatch_count"]
        metrics["deferred"] = len(recon["deferred"])
        metrics["halted"] = float(recon["halted"])
        logger.log_dict(recon, "reconciliation/report.json")
    if "max_drawdown_pct" in metrics:
        metrics["max_drawdown"] = metrics["max_drawdown_pct"]
        metrics["drawdown"] = metrics["drawdown_pct"]
    logger.log_batch(metrics=metrics, tags={"failed_tasks": ",".join(failed) or "none",
                                            "reconciliation": (recon or {}).get("status", "not run")})
    if symbols:
        logger.log_dict(symbols, "portfolio/pnl_by_symbol.json")
    status = "failed" if failed or not recon else "success"
    end_run(mlflow_run_id, status)
    return mlflow_run_id
