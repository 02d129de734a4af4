"""Task bodies for the ingestion DAGs: read the Airflow context, call ``ingest``, return summaries.

What a failing symbol does to the run (retries, ``check_symbols``, ``on_symbol_error``): docs/ingestion.md.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, date
from typing import Any

from include.marketdata.calendar import MarketCalendar
from include.settings import Settings, default_symbols, load_settings, parse_on_symbol_error, parse_symbols

log = logging.getLogger(__name__)
SYMBOL_ERROR_KEY = "symbol_errors"  # XCom of a failed fetch, {symbol: why} (Airflow keeps it after the failure)


def run_key(context: Any) -> str:
    """Staging key: unique per DAG run, stable across task retries and clears."""
    return f"{context['dag'].dag_id}/{context['run_id']}"


def target_session(context: Any, calendar: MarketCalendar, settings: Settings) -> date:
    """The session a run loads: its data interval's session, else the last completed one (at TRADING_CLOCK when
    set, like the trading runs: a pinned simulator clock loads the sessions it serves)."""
    start = context.get("data_interval_start")
    if start is not None and calendar.is_session(start.astimezone(UTC).date()):
        return start.astimezone(UTC).date()
    return calendar.last_completed_session(settings.now())


def symbols_from_params(params: dict[str, Any]) -> list[str]:
    return list(parse_symbols(params.get("symbols") or default_symbols()))


def fetch_bars(symbol: str, context: Any) -> dict[str, Any]:
    from include.ibkr.hook import IBKRHook
    from include.marketdata.ingest import fetch_and_stage_bars

    settings = load_settings()
    calendar = MarketCalendar(settings.exchange)
    params = context["params"]
    try:
        with IBKRHook().get_conn(settings) as client:
            client.ensure_session(prime=False)  # history GETs prime the session themselves if they must
            staged = fetch_and_stage_bars(
                client,
                settings.require_market_db_url(),
                symbol,
                target_session(context, calendar, settings),
                run_key(context),
                calendar=calendar,
                initial_sessions=int(params.get("initial_history_sessions") or settings.initial_history_sessions),
                overlap_sessions=settings.overlap_sessions,
                direct_first_load=True,
            )
    except Exception as exc:
        raise symbol_failure(context, [symbol], exc) from exc
    return staged.as_dict()


def symbol_failure(context: Any, symbols: list[str], exc: BaseException,
                   reasons: dict[str, str] | None = None) -> BaseException:
    """The exception a fetch task fails with: the reason per symbol stays in XCom for ``check_symbols``, which sends
    the run's one alert (so this failure sends none); a permanent failure (``ingest.is_permanent``) is not retried."""
    from airflow.sdk.exceptions import AirflowFailException

    from include.marketdata.ingest import describe, is_permanent

    why = describe(exc)
    context["ti"].xcom_push(key=SYMBOL_ERROR_KEY, value=reasons or dict.fromkeys(symbols, why))
    error: BaseException = (AirflowFailException(f"{', '.join(symbols)}: {why} (not retried)")
                            if is_permanent(exc) else exc)
    with contextlib.suppress(AttributeError):  # a type without __dict__: the generic task alert goes out too
        error.alerted = True  # type: ignore[attr-defined]  # check_symbols alerts once for the whole run
    return error


def load_bars(staged: list[dict[str, Any]], context: Any) -> dict[str, Any]:
    """Load every symbol whose fetch succeeded, each in its own transaction (a first load was COPYed straight into
    the table by its fetch task already); the asset event lists the loaded ones."""
    from include.assets import RAW_DAILY_BARS
    from include.marketdata.ingest import load_staged_symbols

    loaded = {s["symbol"]: s["loaded"] for s in staged if s.get("loaded")}
    symbols = [s["symbol"] for s in staged if not s.get("loaded")]
    results, failed = (load_staged_symbols(load_settings().require_market_db_url(), run_key(context), symbols)
                       if symbols else ([], {}))
    loaded.update({r.symbol: {"received": r.received, "inserted": r.inserted, "updated": r.updated,
                              "unchanged": r.unchanged} for r in results})
    if not loaded:
        raise RuntimeError(f"no symbol could be loaded: {failed}")
    context["outlet_events"][RAW_DAILY_BARS].extra = {
        "symbols": sorted(loaded),
        "sessions": {s["symbol"]: [s["first_session"], s["last_session"]] for s in staged if s["symbol"] in loaded},
    }
    return {"loaded": loaded, "failed": failed}


def _pulled_errors(context: Any, task_id: str) -> dict[str, str]:
    pulled = context["ti"].xcom_pull(task_ids=task_id, key=SYMBOL_ERROR_KEY)  # one dict, or one per mapped task
    return {k: v for item in (pulled if isinstance(pulled, list) else [pulled]) if isinstance(item, dict)
            for k, v in item.items()}


def check_symbols(context: Any, *, load_task: str, fetch_task: str | None = None,
                  requested_task: str = "resolve_symbols") -> dict[str, Any]:
    """The run's verdict on its symbols (trigger rule all_done): every requested symbol the load step did not report
    loaded is named, with its reason, in ONE ``symbols_not_loaded`` alert; ``on_symbol_error`` (conf, else
    ON_SYMBOL_ERROR) ``fail`` then fails this task (so the run), ``warn`` lets the run succeed."""
    from airflow.sdk.exceptions import AirflowFailException

    from include.alerts.events import symbols_not_loaded_alert

    ti = context["ti"]
    requested = list(ti.xcom_pull(task_ids=requested_task) or [])
    summary = ti.xcom_pull(task_ids=load_task) or {}
    loaded = sorted(summary.get("loaded") or summary.get("symbols") or [])
    errors = {**(_pulled_errors(context, fetch_task) if fetch_task else {}), **(summary.get("failed") or {})}
    failed = {s: errors.get(s, f"not loaded: {load_task} did not finish (see its log)")
              for s in requested if s not in loaded}
    mode = parse_on_symbol_error(context["params"].get("on_symbol_error") or load_settings().on_symbol_error,
                                 "on_symbol_error")
    if not requested:
        raise AirflowFailException(f"no symbols resolved ({requested_task} did not finish): nothing was loaded")
    result = {"loaded": loaded, "failed": failed, "on_symbol_error": mode}
    if not failed:
        return result
    symbols_not_loaded_alert(failed, loaded=loaded, dag_id=ti.dag_id, run_id=ti.run_id, on_symbol_error=mode)
    listed = "; ".join(f"{s}: {why}" for s, why in failed.items())
    if mode == "warn":
        log.warning("symbols not loaded (on_symbol_error=warn, the run succeeds): %s; loaded: %s", listed, loaded)
        return result
    error = AirflowFailException(f"{len(failed)} of {len(requested)} symbol(s) not loaded: {listed} (loaded: "
                                 f"{', '.join(loaded) or 'none'}; on_symbol_error=warn lets such a run succeed)")
    error.alerted = True  # type: ignore[attr-defined]  # the symbols_not_loaded alert went out: no generic one too
    raise error


def fetch_snapshots(symbols: list[str], context: Any) -> dict[str, Any]:
    from include.assets import RAW_MARKET_SNAPSHOTS
    from include.ibkr.hook import IBKRHook
    from include.marketdata.ingest import ingest_snapshots

    settings = load_settings()
    try:
        with IBKRHook().get_conn(settings) as client:
            client.ensure_session()
            summary = ingest_snapshots(client, settings.require_market_db_url(), symbols, run_key(context),
                                       isolate=True)
    except Exception as exc:  # a gateway fault: the whole batch retries; check_symbols names them all at the end
        raise symbol_failure(context, symbols, exc) from exc
    if not summary["symbols"]:  # every symbol failed for good: nothing stored, no asset event
        raise symbol_failure(context, symbols, ValueError("no symbol could be snapshotted"), summary["failed"])
    context["outlet_events"][RAW_MARKET_SNAPSHOTS].extra = {
        "symbols": summary["symbols"], "captured_at": summary["captured_at"]
    }
    return summary
