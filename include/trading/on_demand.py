"""Symbols on demand: a trading run's symbols with no bars through its data session or no current features are
fetched (the ingestion loaders), built (the market dbt models) and checked (the quality gate) before
``read_features``. When every symbol is current it returns after one query: no gateway call, no dbt."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from include.ibkr.client import IBKRClient
    from include.settings import Settings
    from include.trading.context import TradingRun

log = logging.getLogger(__name__)
# One on-demand build at a time: the trading DAGs of the factory share the marts (and dbt's incremental models).
_LOCK_KEY = 727_013


@dataclass(frozen=True)
class Backfill:
    """What a run needed (symbol -> why), what it loaded and built, what it could not get (symbol -> why)."""

    needed: dict[str, str]
    loaded: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    verdicts: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def stale_symbols(conn: Any, symbols: Sequence[str], session: date) -> dict[str, str]:
    """{symbol: why} for each symbol with no bar for ``session`` or no features for it in fct_latest_features."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('analytics_marts.fct_latest_features') IS NOT NULL")
        features = ("(SELECT f.session_date FROM analytics_marts.fct_latest_features f WHERE f.symbol = s.symbol)"
                    if cur.fetchone()[0] else "NULL::date")
        cur.execute(f"""SELECT s.symbol, (SELECT max(b.session_date) FROM raw.daily_bars b WHERE b.symbol = s.symbol),
                               {features} FROM unnest(%s::text[]) AS s(symbol)""", (list(symbols),))
        rows = cur.fetchall()
    why: dict[str, str] = {}
    for symbol, last_bar, features_at in rows:
        if last_bar is None:
            why[symbol] = "no bars"
        elif last_bar < session:
            why[symbol] = f"bars end {last_bar}"
        elif features_at is None:
            why[symbol] = "no features"
        elif features_at < session:
            why[symbol] = f"features for {features_at}"
    return why


def backfill(dsn: str, symbols: Sequence[str], session: date, run_key: str, *,
             open_client: Callable[[], AbstractContextManager[IBKRClient]], settings: Settings,
             build: Callable[[str], None] | None = None) -> Backfill:
    """Bring ``symbols`` up to ``session``: fetch and load (per symbol) those that need it, ``dbt build`` the market
    models (``build``, default ``include.dbt_project.dbt_build``), run the quality gate for them. A symbol that fails
    for good (unknown, no data) is returned in ``unavailable``; gateway faults, dbt and gate failures raise."""
    from include.marketdata import db

    started = time.perf_counter()
    with db.connection(dsn) as conn:
        db.ensure_schema(conn)
        needed = stale_symbols(conn, symbols, session)
    if not needed:
        return Backfill(needed={}, seconds=time.perf_counter() - started)
    log.info("on demand for session %s: %s", session, "; ".join(f"{s} ({w})" for s, w in needed.items()))
    with db.connection(dsn) as lock:
        with lock.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))  # held by this connection until it closes
        needed = stale_symbols(lock, list(needed), session)  # another run may have built them while we waited
        if not needed:
            return Backfill(needed={}, seconds=time.perf_counter() - started)
        loaded, unavailable = _fetch_and_load(dsn, list(needed), session, run_key, open_client, settings)
        verdicts: dict[str, str] = {}
        if loaded:
            (build or _dbt_build)(dsn)
            verdicts = _gate(dsn, loaded, session, run_key, settings.exchange)
    for symbol, why in unavailable.items():
        log.error("%s: no data on demand: %s", symbol, why)
    return Backfill(needed=needed, loaded=loaded, unavailable=unavailable, verdicts=verdicts,
                    seconds=time.perf_counter() - started)


def _fetch_and_load(dsn: str, symbols: list[str], session: date, run_key: str,
                    open_client: Callable[[], AbstractContextManager[IBKRClient]],
                    settings: Settings) -> tuple[list[str], dict[str, str]]:
    from include.marketdata.calendar import MarketCalendar
    from include.marketdata.ingest import describe, fetch_and_stage_bars, is_permanent, load_staged_symbols

    calendar = MarketCalendar(settings.exchange)
    staged: list[str] = []
    unavailable: dict[str, str] = {}
    with open_client() as client:
        for symbol in symbols:
            try:
                fetch_and_stage_bars(client, dsn, symbol, session, run_key, calendar=calendar,
                                     initial_sessions=settings.initial_history_sessions,
                                     overlap_sessions=settings.overlap_sessions)
            except Exception as exc:
                if not is_permanent(exc):
                    raise  # a gateway fault: the task retries
                unavailable[symbol] = describe(exc)
                continue
            staged.append(symbol)
    results, failed = load_staged_symbols(dsn, run_key, staged)
    return [r.symbol for r in results], {**unavailable, **failed}


def _dbt_build(dsn: str) -> None:
    from include.dbt_project import dbt_build

    dbt_build(dsn)


def _gate(dsn: str, symbols: list[str], session: date, run_key: str, exchange: str) -> dict[str, str]:
    """The quality gate of market_data_models for ``symbols`` over the sessions it checks, ending at ``session``."""
    from include.quality.validate import DEFAULT_SESSIONS, resolve_scope, validate_market_data

    run = validate_market_data(dsn, resolve_scope(dsn, symbols, DEFAULT_SESSIONS, end=session, exchange=exchange),
                               run_key)
    if not run.validated_anything:
        raise RuntimeError(f"no data-quality check could run for {symbols}: {run.summary['errors']}")
    return {s: v.verdict for s, v in run.verdicts.items()}


def backfill_symbols(run: TradingRun, context: Any) -> dict[str, Any]:
    """Task body (between ibkr_auth and read_features): ``backfill`` for the run's symbols and data session; what
    it did goes to the run's MLflow run. Symbols it could not get stay missing: ``read_features`` names them and
    ``place_orders`` fails the run for them after the others were handled."""
    from include.settings import load_settings

    settings = load_settings()

    @contextmanager
    def open_client() -> Iterator[IBKRClient]:
        from include.ibkr.hook import IBKRHook

        with IBKRHook().get_conn(settings) as client:
            client.ensure_session()
            yield client

    result = backfill(settings.require_market_db_url(), run.symbols, run.data_session, f"{run.label}/on_demand",
                      open_client=open_client, settings=settings)
    if result.needed:
        logger = run.mlflow_logger()
        logger.log_batch(metrics={"on_demand_symbols": len(result.loaded), "on_demand_seconds": result.seconds})
        logger.log_dict(result.as_dict(), "data_quality/on_demand.json")
    else:
        log.info("every symbol has bars and features for %s: nothing to fetch or build", run.data_session)
    return result.as_dict()
