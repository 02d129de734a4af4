"""Ingestion steps the DAGs call: resolve contracts, fetch and stage bars, load a batch, snapshots.

No Airflow imports: tasks pass in an ``IBKRClient``, a DSN and a run id, so the same code runs in
the DAGs, the benchmark and the tests.
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


@dataclass(frozen=True)
class StagedBars:
    symbol: str
    conid: int
    start: str
    end: str
    rows: int
    first_session: str | None
    last_session: str | None

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


def resolve_contract(client: IBKRClient, conn: Any, symbol: str) -> Contract:
    """Contract for ``symbol``, from the gateway, remembered in ``raw.contracts``."""
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
) -> StagedBars:
    """Fetch validated daily bars for one symbol and stage them for the batch load.

    Raises the client's typed errors (unknown symbol, malformed bar, gateway faults) naming the
    symbol; nothing reaches ``raw.daily_bars`` here.
    """
    with db.connection(dsn) as conn:
        db.ensure_schema(conn)
        last_loaded = loaders.latest_sessions(conn, [symbol]).get(symbol)
        start, end = fetch_window(
            calendar, session, last_loaded, initial_sessions=initial_sessions, overlap_sessions=overlap_sessions
        )
        contract = resolve_contract(client, conn, symbol)
        bars = client.daily_bars(contract, start, end)
        rows = loaders.stage_bars(conn, run_key, symbol, bars, data_source(client))
    log.info("%s: staged %d bars for %s..%s (last loaded: %s)", symbol, rows, start, end, last_loaded)
    return StagedBars(
        symbol=symbol,
        conid=contract.conid,
        start=start.isoformat(),
        end=end.isoformat(),
        rows=rows,
        first_session=bars[0].session_date.isoformat() if bars else None,
        last_session=bars[-1].session_date.isoformat() if bars else None,
    )


def load_staged_batch(dsn: str, run_key: str, symbols: list[str]) -> list[loaders.LoadResult]:
    """Upsert every staged symbol of this run in one transaction (all or nothing)."""
    with db.connection(dsn) as conn:
        db.ensure_schema(conn)
        results = loaders.upsert_staged_bars(conn, run_key, expected_symbols=symbols)
    for r in results:
        log.info(
            "%s: %d received, %d inserted, %d updated, %d unchanged",
            r.symbol, r.received, r.inserted, r.updated, r.unchanged,
        )  # fmt: skip
    return results


def ingest_snapshots(client: IBKRClient, dsn: str, symbols: list[str], run_key: str) -> dict[str, Any]:
    """Take one market snapshot of ``symbols`` and store it (one transaction, deduplicated); the summary names
    the symbols whose quote came without the gateway's update time (``quote_at`` NULL: age unknown)."""
    with db.connection(dsn) as conn:
        db.ensure_schema(conn)
        contracts = [resolve_contract(client, conn, s) for s in symbols]
        snapshots = client.snapshot(contracts)
        inserted = loaders.load_snapshots(conn, snapshots, run_key, data_source(client))
    undated = [s.symbol for s in snapshots if s.quote_at is None]
    if undated:
        log.warning("snapshot(s) without the gateway's update time, stored with quote_at NULL: %s", undated)
    return {
        "symbols": [s.symbol for s in snapshots],
        "received": len(snapshots),
        "inserted": inserted,
        "captured_at": max(s.captured_at for s in snapshots).isoformat() if snapshots else None,
        "without_quote_time": undated,
    }
