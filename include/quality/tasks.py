"""Task bodies for the quality gate of ``market_data_models``: read the Airflow context, call ``validate``."""

from __future__ import annotations

import logging
from datetime import date
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
