"""Per-symbol data-quality verdicts: derived from check results, stored in ``quality.symbol_verdicts``, read back
by trading with ``session_verdicts`` (the verdict of one session; ``latest_verdicts``: the newest, any session).
How a symbol gets ``pass`` / ``warn`` / ``fail``: docs/data-quality.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from include.marketdata.db import apply_ddl
from include.quality.checks import Scope

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

    from include.quality.gx_run import CheckResult

VerdictValue = Literal["pass", "warn", "fail"]
NO_VERDICT = "no data-quality verdict"
SCHEMA_SQL = Path(__file__).with_name("schema.sql")
_COLUMNS = "symbol, verdict, reasons, run_key, checked_at, range_start, range_end, last_session"


@dataclass(frozen=True)
class Verdict:
    symbol: str
    verdict: VerdictValue
    reasons: tuple[str, ...] = ()
    run_key: str | None = None
    checked_at: datetime | None = None
    range_start: date | None = None
    range_end: date | None = None
    last_session: date | None = None  # the latest raw bar in the range

    @property
    def tradeable(self) -> bool:
        return self.verdict != "fail"

    @property
    def session(self) -> date | None:
        """The session this verdict is for: the last completed session when its run started (``range_end``)."""
        return self.range_end

    def as_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "verdict": self.verdict, "reasons": list(self.reasons),
                "run_key": self.run_key, "checked_at": self.checked_at.isoformat() if self.checked_at else None,
                "session": _iso(self.session), "range_start": _iso(self.range_start),
                "range_end": _iso(self.range_end), "last_session": _iso(self.last_session)}


@dataclass(frozen=True)
class Decision:
    verdict: VerdictValue
    reasons: tuple[str, ...]
    failed_checks: int
    warned_checks: int


def decide(symbols: Iterable[str], results: Sequence[CheckResult]) -> dict[str, Decision]:
    """Verdict and reasons per symbol, fail reasons first. Rows of symbols outside ``symbols`` (or without one,
    like a NULL mart key) change no verdict: they stay visible in the check's results and the summary."""
    found: dict[str, dict[str, list[str]]] = {s: {"fail": [], "warn": []} for s in symbols}
    for result in results:
        if result.error is not None:
            for reasons in found.values():
                reasons["fail"].append(f"check {result.check} could not run: {result.error}")
            continue
        for row in result.rows:
            if row.get("symbol") in found:
                found[row["symbol"]][result.severity].append(_reason(result.check, row))
    return {
        symbol: Decision("fail" if r["fail"] else "warn" if r["warn"] else "pass", (*r["fail"], *r["warn"]),
                         len(r["fail"]), len(r["warn"]))
        for symbol, r in found.items()
    }


def _reason(check: str, row: dict[str, Any]) -> str:
    examples = list(row.get("examples") or [])
    more = int(row.get("sessions") or 0) - len(examples)
    text = "; ".join(examples) + (f"; and {more} more session(s)" if more > 0 else "")
    return f"{text} [{check}]"


def ensure_schema(conn: PgConnection) -> None:
    """Create the verdict table if missing; run on every write (clean databases drop the schema)."""
    apply_ddl(conn, SCHEMA_SQL.read_text())


def bar_counts(conn: PgConnection, scope: Scope, raw_relation: str) -> dict[str, tuple[int, date | None]]:
    """Raw bars in the range and the latest one, per symbol (stored with the verdict)."""
    with conn, conn.cursor() as cur:
        cur.execute(
            f"SELECT symbol, count(*), max(session_date) FROM {raw_relation}"  # relation validated by the caller
            " WHERE symbol = ANY(%s) AND session_date BETWEEN %s AND %s GROUP BY symbol",
            (list(scope.symbols), scope.start, scope.end),
        )
        return {symbol: (int(n), last) for symbol, n, last in cur.fetchall()}


def write_verdicts(
    conn: PgConnection, run_key: str, scope: Scope, results: Sequence[CheckResult], raw_relation: str
) -> dict[str, Verdict]:
    """Decide and upsert one row per symbol of ``scope`` for ``run_key`` (a retried run overwrites its own rows).

    Only the scope's symbols are written: a run over a few symbols leaves every other symbol's verdicts alone.
    """
    from psycopg2.extras import Json, execute_values

    ensure_schema(conn)
    decided = decide(scope.symbols, results)
    counts = bar_counts(conn, scope, raw_relation)
    rows = [
        (run_key, symbol, d.verdict, Json(list(d.reasons)), scope.start, scope.end, *counts.get(symbol, (0, None)),
         d.failed_checks, d.warned_checks)
        for symbol, d in decided.items()
    ]
    if not rows:
        return {}
    with conn, conn.cursor() as cur:
        returned = execute_values(cur, """
            INSERT INTO quality.symbol_verdicts (run_key, symbol, verdict, reasons, range_start, range_end, bars,
                                                 last_session, failed_checks, warned_checks)
            VALUES %s
            ON CONFLICT (run_key, symbol) DO UPDATE SET
                verdict = EXCLUDED.verdict, reasons = EXCLUDED.reasons, checked_at = EXCLUDED.checked_at,
                range_start = EXCLUDED.range_start, range_end = EXCLUDED.range_end, bars = EXCLUDED.bars,
                last_session = EXCLUDED.last_session, failed_checks = EXCLUDED.failed_checks,
                warned_checks = EXCLUDED.warned_checks
            RETURNING symbol, checked_at""", rows, fetch=True)
        checked_at = dict(returned)
    return {
        symbol: Verdict(symbol, d.verdict, d.reasons, run_key, checked_at[symbol], scope.start, scope.end,
                        counts.get(symbol, (0, None))[1])
        for symbol, d in decided.items()
    }


def latest_verdicts(
    conn: PgConnection, symbols: Iterable[str], max_age: timedelta | None = None
) -> dict[str, Verdict]:
    """Each symbol's most recent verdict. No verdict (or one older than ``max_age``) reads as ``fail``.

    Read-only: it neither creates the table nor ends the caller's transaction.
    """
    wanted = list(dict.fromkeys(symbols))
    out = {s: Verdict(s, "fail", (NO_VERDICT,)) for s in wanted}
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('quality.symbol_verdicts') IS NOT NULL, now()")
        exists, now = cur.fetchone()
        if not exists or not wanted:
            return out
        cur.execute(f"""
            SELECT DISTINCT ON (symbol) {_COLUMNS}
            FROM quality.symbol_verdicts WHERE symbol = ANY(%s)
            ORDER BY symbol, checked_at DESC, run_key DESC""", (wanted,))
        for row in cur.fetchall():
            found = _verdict(row)
            if max_age is not None and now - found.checked_at > max_age:
                found = replace(found, verdict="fail", reasons=(
                    f"latest data-quality verdict is older than {max_age} "
                    f"(checked {found.checked_at.isoformat()}, run {found.run_key})",))
            out[found.symbol] = found
    return out


def session_verdicts(conn: PgConnection, symbols: Iterable[str], session: date) -> dict[str, Verdict]:
    """Each symbol's verdict for ``session``: what trading on that session may rely on.

    Among the verdicts of runs that checked up to ``session`` (``range_end = session``) the one of the widest range
    counts (earliest ``range_start``; ties: the newest), so a narrow manual run never overrides a full run for the
    same session, while a full re-run after a data fix replaces the full run it repeats. ``fail`` when there is no
    such verdict (ingestion or the quality run stopped: the newest verdict is for an older session) or when its
    latest raw bar is older than ``session``. Read-only: it neither creates the table nor ends the caller's
    transaction.
    """
    if isinstance(session, datetime):  # a logical date or timestamp would silently match no range_end
        raise TypeError(f"session must be an exchange session date, not a datetime: {session!r}")
    wanted = list(dict.fromkeys(symbols))
    out: dict[str, Verdict] = {}
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('quality.symbol_verdicts') IS NOT NULL")
        (exists,) = cur.fetchone()
        if exists and wanted:
            cur.execute(f"""
                SELECT DISTINCT ON (symbol) {_COLUMNS}
                FROM quality.symbol_verdicts WHERE symbol = ANY(%s) AND range_end = %s
                ORDER BY symbol, range_start, checked_at DESC, run_key DESC""", (wanted, session))
            for row in cur.fetchall():
                out[row[0]] = _session_check(_verdict(row), session)
        missing = [s for s in wanted if s not in out]
        latest: dict[str, date] = {}
        if exists and missing:
            cur.execute("SELECT symbol, max(range_end) FROM quality.symbol_verdicts WHERE symbol = ANY(%s)"
                        " GROUP BY symbol", (missing,))
            latest = dict(cur.fetchall())
    for symbol in missing:
        out[symbol] = Verdict(symbol, "fail", (f"{NO_VERDICT} for session {session.isoformat()} "
                                               f"(latest verdict: {_iso(latest.get(symbol)) or 'none'})",))
    return {s: out[s] for s in wanted}


def _verdict(row: Sequence[Any]) -> Verdict:
    symbol, verdict, reasons, run_key, checked_at, start, end, last = row
    reasons = reasons if isinstance(reasons, list) else json.loads(reasons)
    return Verdict(symbol, verdict, tuple(reasons), run_key, checked_at, start, end, last)


def _session_check(found: Verdict, session: date) -> Verdict:
    """A verdict whose symbol has no bar for ``session`` fails, whatever its checks said (stale is not tradeable)."""
    if found.last_session is not None and found.last_session >= session:
        return found
    stale = (f"latest bar {found.last_session.isoformat()} is older than session {session.isoformat()}"
             if found.last_session else f"no bar up to session {session.isoformat()}")
    return replace(found, verdict="fail", reasons=(stale, *found.reasons))


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None
