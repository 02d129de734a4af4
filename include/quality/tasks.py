"""Task bodies for the quality gate of ``market_data_models``: read the Airflow context, call ``validate``."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Any

from include.settings import load_settings, parse_symbols

log = logging.getLogger(__name__)


def resolve_scope(context: Any) -> dict[str, Any]:
    """Symbols (param ``symbols``, else every symbol in raw.daily_bars) and the last ``sessions`` sessions."""
    from include.quality.validate import DEFAULT_SESSIONS
    from include.quality.validate import resolve_scope as resolve

    params = context["params"]
    settings = load_settings()
    symbols = list(parse_symbols(params["symbols"])) if params.get("symbols") else None
    scope = resolve(settings.require_market_db_url(), symbols, int(params.get("sessions") or DEFAULT_SESSIONS),
                    exchange=settings.exchange)
    return scope.as_dict()


def check_quality(scope: dict[str, Any], context: Any) -> dict[str, Any]:
    """Validate, write verdicts and reports; fails only when no check could run at all."""
    from include.marketdata.calendar import MarketCalendar
    from include.marketdata.tasks import run_key
    from include.quality.checks import Scope
    from include.quality.validate import validate_market_data

    days = MarketCalendar(scope["exchange"]).sessions_between(date.fromisoformat(scope["start"]),
                                                              date.fromisoformat(scope["end"]))
    run = validate_market_data(load_settings().require_market_db_url(),
                               Scope(tuple(scope["symbols"]), tuple(days), scope["exchange"]), run_key(context))
    summary = run.summary
    log.info("data quality %s: checks %s, verdicts %s, reports %s", summary["run_key"], summary["checks"],
             summary["verdicts"], summary["reports"].get("data_docs") or summary["reports"]["summary"])
    for verdict in run.verdicts.values():
        if verdict.verdict != "pass":
            log.warning("%s %s: %s", verdict.symbol, verdict.verdict.upper(), " | ".join(verdict.reasons[:5]))
    if summary["errors"]:
        log.error("checks that could not run (their symbols fail): %s", summary["errors"])
    if not run.validated_anything:
        raise RuntimeError(f"no data-quality check could run: {summary['errors']}")
    return summary


_LAYERS = {
    "raw_daily_bars": "raw.daily_bars",
    "int_daily_bars_enriched": "analytics_intermediate.int_daily_bars_enriched",
    "fct_daily_indicators": "analytics_marts.fct_daily_indicators",
    "fct_latest_features": "analytics_marts.fct_latest_features",
}
_SAMPLES = {
    "fct_daily_indicators": "SELECT * FROM analytics_marts.fct_daily_indicators ORDER BY session_date DESC, symbol",
    "fct_latest_features": "SELECT * FROM analytics_marts.fct_latest_features ORDER BY symbol",
}


def _report_paths(reports: dict[str, str]) -> list[str]:
    """The GX JSON files and the whole Data Docs folder (index.html alone would lose its pages)."""
    paths = [p for key, p in reports.items() if key != "data_docs"]
    if reports.get("data_docs"):
        paths.append(str(Path(reports["data_docs"]).parent))
    return paths


def _outcome(context: Any) -> str:
    """failed if any other task of this DAG run failed (dbt included), else success."""
    ti = context["ti"]
    states = ti.get_task_states(dag_id=context["dag"].dag_id, run_ids=[context["run_id"]]).get(context["run_id"], {})
    failed = {"failed", "upstream_failed"}
    return "failed" if any(s in failed for t, s in states.items() if t != ti.task_id) else "success"


def log_data_run(scope: dict[str, Any], summary: dict[str, Any], context: Any) -> str:
    """The models run in MLflow (experiment ``ibkr-stock-data``): scope, rows per layer, checks, a sample CSV per
    mart, the GX reports; with DEBUG_MODE=true also the run's context and each layer's SQL and sample rows."""
    from include.marketdata.db import connection
    from include.tracking import RunLogger, context_ids, debug_mode, log_debug_context, log_debug_step, record_data_run

    dsn = load_settings().require_market_db_url()
    rows: dict[str, int] = {}
    with connection(dsn) as conn, conn.cursor() as cur:
        for layer, relation in _LAYERS.items():
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (relation,))
            if cur.fetchone()[0]:
                cur.execute(f"SELECT count(*) FROM {relation}")
                rows[layer] = cur.fetchone()[0]
    verdicts = summary["verdicts"]
    status = "fail" if verdicts.get("fail") else "warn" if verdicts.get("warn") else "pass"
    ids = context_ids(context)
    run_id = record_data_run(
        dag_id=ids["dag_id"], run_id=ids["run_id"], try_number=ids["try_number"],
        symbols=scope["symbols"], rows_per_layer=rows,
        checks_passed=summary["checks"]["passed"], checks_failed=summary["checks"]["failed"],
        validation_status=status, session_start=scope["start"], session_end=scope["end"],
        samples={name: sql for name, sql in _SAMPLES.items() if rows.get(name)},
        reports=_report_paths(summary["reports"]),
        params={"symbols_count": len(scope["symbols"]), "debug_mode": debug_mode()},
        outcome=_outcome(context),
    )
    if debug_mode():
        logger = RunLogger(run_id)
        log_debug_context(logger, {"scope": scope, "checks": summary["checks"]})
        with connection(dsn) as conn, conn.cursor() as cur:
            for layer, relation in _LAYERS.items():
                sql = f"SELECT * FROM {relation} ORDER BY 1, 2 LIMIT 20"
                cur.execute(sql)
                log_debug_step(logger, layer, sql=sql, columns=[d[0] for d in cur.description],
                               rows=cur.fetchall())
    return run_id
