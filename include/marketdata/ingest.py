"""Ingestion steps the DAGs call: resolve contracts, fetch and stage bars, load them symbol by symbol, snapshots.

No Airflow imports, and how a symbol's failure stays its own: docs/ingestion.md.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from include.marketdata import db, loaders
from include.marketdata.calendar import MarketCalendar

if TYPE_CHECKING:
    from include.ibkr.client import IBKRClient
    from include.ibkr.models import Contract

log = logging.getLogger(__name__)


def is_permanent(exc: BaseException) -> bool:
    """True for a failure of one symbol's data that no retry can fix: an unknown ticker, an invalid bar, no data,
    a request IBKR refuses, values that cannot be stored. Gateway faults (5xx, pacing, session, network) are not."""
    from include.ibkr import errors as E

    permanent = (E.UnknownSymbolError, E.InvalidBarError, E.NoDataError, E.BadRequestError, ValueError)
    return isinstance(exc, permanent)


def describe(exc: BaseException) -> str:
    """One line naming the error type (what a symbol's failure is reported as)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True)
class StagedBars:
    symbol: str
    conid: int
    start: str
    end: str
    rows: int
    first_session: str | None
    last_session: str | None
    loaded: dict[str, int] | None = None  # a first load COPYed straight into raw.daily_bars: nothing to upsert

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fetch_window(
    calendar: MarketCalendar,
    session: date,
    last_loaded: date | None,
    *,
    initial_sessions: int,
    overlap_sessions: int,
) -> tuple[date, date]:
    """Sessions to (re)fetch for a run that targets ``session``.

    First load: ``initial_sessions`` of history. Later loads: from a few sessions before the last
    loaded one (the overlap picks up late corrections) through ``session``. A backfill of an older
    session re-fetches just that session plus the overlap.
    """
    if last_loaded is None:
        return calendar.sessions_back(session, initial_sessions - 1), session
    anchor = min(last_loaded, session)
    if not calendar.is_session(anchor):
        anchor = calendar.previous_session(anchor)
    return calendar.sessions_back(anchor, overlap_sessions), session


def data_source(client: IBKRClient) -> str:
    """Label stored with every row: which gateway produced it (the simulator names itself)."""
    return f"ibkr:{client.server_name or 'unknown'}"


# A conid stored longer ago than this is looked up again (IBKR conids are stable; this bounds a stale row).
CONTRACT_MAX_AGE_DAYS = 30


def known_contracts(conn: Any, symbols: list[str] | tuple[str, ...]) -> dict[str, Contract]:
    """Contracts ``raw.contracts`` already holds for ``symbols`` (resolved within CONTRACT_MAX_AGE_DAYS)."""
    from include.ibkr.models import Contract

    with conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('raw.contracts') IS NOT NULL")
        if not cur.fetchone()[0]:
            return {}
        cur.execute("""SELECT symbol, conid, exchange, company_name, currency FROM raw.contracts
                       WHERE symbol = ANY(%s) AND resolved_at > now() - make_interval(days => %s)""",
                    ([s.strip().upper() for s in symbols], CONTRACT_MAX_AGE_DAYS))
        return {r[0]: Contract(symbol=r[0], conid=r[1], exchange=r[2], company_name=r[3], currency=r[4] or "USD")
                for r in cur.fetchall()}


def seed_contracts(client: IBKRClient, conn: Any, symbols: list[str] | tuple[str, ...]) -> dict[str, Contract]:
    """The client's conid cache seeded from ``raw.contracts``: a symbol resolved before is not looked up again."""
    known = known_contracts(conn, symbols)
    client.remember_contracts(known.values())
    return known


def resolve_contract(client: IBKRClient, conn: Any, symbol: str) -> Contract:
    """Contract for ``symbol``: the client's cache (seeded from ``raw.contracts``), else the gateway, remembered in
    ``raw.contracts``."""
    cached = client.cached_contract(symbol)
    if cached is not None:
        return cached
    contract = client.resolve_contract(symbol)
    loaders.save_contracts(conn, [contract])
    return contract


def fetch_and_stage_bars(
    client: IBKRClient,
    dsn: str,
    symbol: str,
    session: date,
    run_key: str,
    *,
    calendar: MarketCalendar,
    initial_sessions: int,
    overlap_sessions: int,
    direct_first_load: bool = False,
) -> StagedBars:
    """Fetch validated daily bars for one symbol and stage them for the batch load (COPY overlapped with the fetch:
    each history window is COPYed while the next one is fetched).

    ``direct_first_load``: a symbol with no bars yet is COPYed straight into ``raw.daily_bars`` in one transaction
    (``StagedBars.loaded`` says so; nothing is staged for it). Otherwise nothing reaches ``raw.daily_bars`` here.
    The conid of a symbol loaded before comes from ``raw.contracts`` (resolved within CONTRACT_MAX_AGE_DAYS), not
    from a gateway search on every run. Raises the client's typed errors (unknown symbol, malformed bar, gateway
    faults) naming the symbol.
    """
    from datetime import timedelta

    with db.connection(dsn) as conn:
        db.ensure_schema(conn)
        last_loaded = loaders.latest_sessions(conn, [symbol]).get(symbol)
        start, end = fetch_window(
            calendar, session, last_loaded, initial_sessions=initial_sessions, overlap_sessions=overlap_sessions
        )
        if last_loaded is not None:  # a symbol loaded before: its conid is in raw.contracts, no gateway look-up
            seed_contracts(client, conn, [symbol])
        contract = resolve_contract(client, conn, symbol)
        chunks = client.iter_daily_bar_columns(contract, start, end)
        source = data_source(client)
        direct = None
        if direct_first_load and last_loaded is None:
            direct = loaders.load_first_bar_columns(conn, run_key, symbol, chunks, source)
        if direct is None:
            copied, loaded = loaders.stage_bar_columns(conn, run_key, symbol, chunks, source), None
            log.info("%s: staged %d bars for %s..%s (last loaded: %s)", symbol, copied.rows, start, end, last_loaded)
        else:
            result, copied = direct
            loaded = {"received": result.received, "inserted": result.inserted, "updated": 0, "unchanged": 0}
            log.info("%s: first load, %d bars for %s..%s COPYed into raw.daily_bars", symbol, copied.rows, start, end)
    epoch = date(1970, 1, 1)
    return StagedBars(
        symbol=symbol,
        conid=contract.conid,
        start=start.isoformat(),
        end=end.isoformat(),
        rows=copied.rows,
        first_session=(epoch + timedelta(days=copied.first_day)).isoformat() if copied.rows else None,
        last_session=(epoch + timedelta(days=copied.last_day)).isoformat() if copied.rows else None,
        loaded=loaded,
    )


def load_staged_symbols(dsn: str, run_key: str, symbols: list[str]) -> tuple[list[loaders.LoadResult], dict[str, str]]:
    """Upsert each staged symbol of this run in a transaction of its own: (results, {symbol: why it did not load})."""
    import psycopg2

    results: list[loaders.LoadResult] = []
    failed: dict[str, str] = {}
    with db.connection(dsn) as conn:
        db.ensure_schema(conn)
        for symbol in symbols:
            try:
                r = loaders.upsert_staged_symbol(conn, run_key, symbol)
            except (psycopg2.Error, RuntimeError) as exc:  # rolled back: only this symbol is not loaded
                failed[symbol] = describe(exc)
                log.error("%s: not loaded: %s", symbol, failed[symbol])
                continue
            results.append(r)
            log.info("%s: %d received, %d inserted, %d updated, %d unchanged",
                     r.symbol, r.received, r.inserted, r.updated, r.unchanged)
    return results, failed


def ingest_snapshots(client: IBKRClient, dsn: str, symbols: list[str], run_key: str, *,
                     isolate: bool = False) -> dict[str, Any]:
    """Take one market snapshot of ``symbols`` and store it (one transaction, deduplicated); the summary names
    the symbols whose quote came without the gateway's update time (``quote_at`` NULL: age unknown).

    ``isolate``: a symbol failing for good (``is_permanent``: unknown ticker, no data) is left out and named in
    ``failed`` instead of failing the batch; gateway faults still raise."""
    failed: dict[str, str] = {}
    with db.connection(dsn) as conn:
        db.ensure_schema(conn)
        seed_contracts(client, conn, symbols)
        contracts = []
        for symbol in symbols:
            try:
                contracts.append(resolve_contract(client, conn, symbol))
            except Exception as exc:
                if not (isolate and is_permanent(exc)):
                    raise
                failed[symbol] = describe(exc)
        snapshots = _snapshot(client, contracts, failed) if isolate else client.snapshot(contracts)
        inserted = loaders.load_snapshots(conn, snapshots, run_key, data_source(client))
    undated = [s.symbol for s in snapshots if s.quote_at is None]
    if undated:
        log.warning("snapshot(s) without the gateway's update time, stored with quote_at NULL: %s", undated)
    if failed:
        log.error("no snapshot for %s", "; ".join(f"{s} ({why})" for s, why in failed.items()))
    return {
        "symbols": [s.symbol for s in snapshots],
        "received": len(snapshots),
        "inserted": inserted,
        "captured_at": max(s.captured_at for s in snapshots).isoformat() if snapshots else None,
        "without_quote_time": undated,
        "failed": failed,
    }


def _snapshot(client: IBKRClient, contracts: list[Contract], failed: dict[str, str]) -> list[Any]:
    """One snapshot call for all; if that fails for good (a symbol without data), one call per symbol instead."""
    out: list[Any] = []
    for batch in [contracts] if len(contracts) == 1 else [contracts, *([c] for c in contracts)]:
        try:
            snapshots = client.snapshot(batch)
        except Exception as exc:
            if not is_permanent(exc):
                raise
            if len(batch) == 1:
                failed[batch[0].symbol] = describe(exc)
            continue
        if len(batch) == len(contracts):
            return snapshots
        out.extend(snapshots)
    return out
