"""Task bodies for the ingestion DAGs: read the Airflow context, call ``ingest``, return summaries."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from include.marketdata.calendar import MarketCalendar
from include.settings import load_settings, parse_symbols


def run_key(context: Any) -> str:
    """Staging key: unique per DAG run, stable across task retries and clears."""
    return f"{context['dag'].dag_id}/{context['run_id']}"


def target_session(context: Any, calendar: MarketCalendar) -> date:
    """The session a run loads: its data interval's session, else the last completed one."""
    start = context.get("data_interval_start")
    if start is not None and calendar.is_session(start.astimezone(UTC).date()):
        return start.astimezone(UTC).date()
    return calendar.last_completed_session(datetime.now(UTC))


def symbols_from_params(params: dict[str, Any]) -> list[str]:
    return list(parse_symbols(params.get("symbols") or load_settings().stock_symbols))


def fetch_bars(symbol: str, context: Any) -> dict[str, Any]:
    from include.ibkr.hook import IBKRHook
    from include.marketdata.ingest import fetch_and_stage_bars

    settings = load_settings()
    calendar = MarketCalendar(settings.exchange)
    params = context["params"]
    with IBKRHook().get_conn(settings) as client:
        client.ensure_session()
        staged = fetch_and_stage_bars(
            client,
            settings.require_market_db_url(),
            symbol,
            target_session(context, calendar),
            run_key(context),
            calendar=calendar,
            initial_sessions=int(params.get("initial_history_sessions") or settings.initial_history_sessions),
            overlap_sessions=settings.overlap_sessions,
        )
    return staged.as_dict()


def load_bars(staged: list[dict[str, Any]], context: Any) -> dict[str, Any]:
    from include.assets import RAW_DAILY_BARS
    from include.marketdata.ingest import load_staged_batch

    symbols = [s["symbol"] for s in staged]
    results = load_staged_batch(load_settings().require_market_db_url(), run_key(context), symbols)
    summary = {
        r.symbol: {"received": r.received, "inserted": r.inserted, "updated": r.updated,
                   "unchanged": r.unchanged}
        for r in results
    }
    context["outlet_events"][RAW_DAILY_BARS].extra = {
        "symbols": symbols,
        "sessions": {s["symbol"]: [s["first_session"], s["last_session"]] for s in staged},
    }
    return summary


def fetch_snapshots(symbols: list[str], context: Any) -> dict[str, Any]:
    from include.assets import RAW_MARKET_SNAPSHOTS
    from include.ibkr.hook import IBKRHook
    from include.marketdata.ingest import ingest_snapshots

    settings = load_settings()
    with IBKRHook().get_conn(settings) as client:
        client.ensure_session()
        summary = ingest_snapshots(client, settings.require_market_db_url(), symbols, run_key(context))
    context["outlet_events"][RAW_MARKET_SNAPSHOTS].extra = {
        "symbols": summary["symbols"], "captured_at": summary["captured_at"]
    }
    return summary
