"""Validate raw bars and the indicator mart for a scope, write per-symbol verdicts and readable reports (market
data is only read, never modified). Scope and the DAG that runs it: docs/data-quality.md.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from include.marketdata.calendar import MarketCalendar
from include.quality.checks import Scope, relation
from include.quality.verdicts import Verdict
from include.settings import Settings

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]
DEFAULT_SESSIONS = 252  # one year: covers the 200-session windows the trading features read
RAW_SUITE, MART_SUITE = "raw_daily_bars", "fct_daily_indicators"


@dataclass(frozen=True)
class QualityConfig:
    raw_relation: str = "raw.daily_bars"
    mart_relation: str = "analytics_marts.fct_daily_indicators"
    stale_fail_after: int = 5  # sessions behind before stale bars fail instead of warn (a week of trading)
    include_mart: bool = True
    max_daily_move: float | None = None  # close-to-close move that fails a symbol; None: QUALITY_MAX_DAILY_MOVE

    def daily_move_limit(self) -> float:
        return self.max_daily_move if self.max_daily_move is not None else Settings.from_env().quality_max_daily_move


@dataclass
class QualityRun:
    summary: dict[str, Any]
    paths: dict[str, str]
    verdicts: dict[str, Verdict]
    results: list[Any] = field(default_factory=list)  # gx_run.CheckResult

    @property
    def validated_anything(self) -> bool:
        """False when no check could run (database or relations unusable): the caller should fail loudly."""
        return any(r.error is None for r in self.results)


def resolve_scope(
    dsn: str,
    symbols: list[str] | tuple[str, ...] | None = None,
    sessions: int = DEFAULT_SESSIONS,
    end: date | None = None,
    exchange: str = "XNYS",
    raw_relation: str = "raw.daily_bars",
) -> Scope:
    """``symbols`` or every symbol with raw bars; the ``sessions`` exchange sessions ending at ``end`` (default:
    the last completed session now, or at TRADING_CLOCK)."""
    calendar = MarketCalendar(exchange)
    end = end or calendar.last_completed_session(Settings.from_env().now())  # TRADING_CLOCK when set
    days = calendar.sessions_between(calendar.sessions_back(end, max(sessions, 1) - 1), end)
    if symbols is None:
        symbols = symbols_with_bars(dsn, relation(raw_relation))
    return Scope(tuple(dict.fromkeys(symbols)), tuple(days), exchange)


def symbols_with_bars(dsn: str, raw_relation: str) -> list[str]:
    from include.marketdata import db

    # Loose index scan over the (symbol, session_date) key: one probe per symbol instead of reading every bar.
    sql = f"""WITH RECURSIVE s AS (
        SELECT min(symbol) AS symbol FROM {raw_relation}
        UNION ALL
        SELECT (SELECT min(symbol) FROM {raw_relation} WHERE symbol > s.symbol) FROM s WHERE s.symbol IS NOT NULL)
    SELECT symbol FROM s WHERE symbol IS NOT NULL"""
    with db.connection(dsn) as conn, conn, conn.cursor() as cur:
        cur.execute(sql)
        return [row[0] for row in cur.fetchall()]


def reports_dir_for(run_key: str) -> Path:
    """``$QUALITY_REPORTS_DIR/<run-key-slug>`` (default ``<repo>/.local/quality/<run-key-slug>``)."""
    base = Path(Settings.from_env().quality_reports_dir or REPO / ".local" / "quality")
    return base / (re.sub(r"[^A-Za-z0-9._-]+", "_", run_key).strip("_") or "run")


def validate_market_data(
    dsn: str, scope: Scope, run_key: str, reports_dir: Path | None = None, config: QualityConfig | None = None
) -> QualityRun:
    """Run the raw (and mart) suites, upsert one verdict per symbol for ``run_key``, write JSON + Data Docs."""
    from include.marketdata import db
    from include.quality.gx_run import Suite, run_suites
    from include.quality.mart_checks import mart_checks
    from include.quality.raw_checks import raw_checks
    from include.quality.verdicts import write_verdicts

    config = config or QualityConfig()
    raw, mart = relation(config.raw_relation), relation(config.mart_relation)
    out = Path(reports_dir) if reports_dir is not None else reports_dir_for(run_key)
    out.mkdir(parents=True, exist_ok=True)
    suites = [Suite(RAW_SUITE, raw, raw_checks(scope, config.stale_fail_after, config.daily_move_limit()))]
    if config.include_mart:
        suites.append(Suite(MART_SUITE, mart, mart_checks(scope, raw)))

    started = time.perf_counter()
    outcomes = run_suites(dsn, suites, docs_dir=out / "data_docs")
    validated = time.perf_counter() - started
    results = [r for o in outcomes for r in o.results]
    with db.connection(dsn) as conn:
        verdicts = write_verdicts(conn, run_key, scope, results, raw)

    paths = {f"gx_{o.suite}": str(out / f"gx_{o.suite}.json") for o in outcomes}
    for o in outcomes:
        Path(paths[f"gx_{o.suite}"]).write_text(json.dumps(o.gx_result, indent=2, default=str))
    docs = out / "data_docs" / "index.html"
    if docs.exists():
        paths["data_docs"] = str(docs)
    paths["verdicts"] = str(out / "verdicts.json")
    Path(paths["verdicts"]).write_text(json.dumps([v.as_dict() for v in verdicts.values()], indent=2))
    paths["summary"] = str(out / "summary.json")
    summary = summarize(run_key, scope, results, verdicts, paths, validated, time.perf_counter() - started)
    Path(paths["summary"]).write_text(json.dumps(summary, indent=2))
    return QualityRun(summary, paths, verdicts, results)


def summarize(
    run_key: str, scope: Scope, results: list[Any], verdicts: dict[str, Verdict], paths: dict[str, str],
    validate_seconds: float, total_seconds: float,
) -> dict[str, Any]:
    """Checks passed/failed/errored and symbols per verdict: small enough for XCom and MLflow params."""
    by_verdict: dict[str, list[str]] = {"pass": [], "warn": [], "fail": []}
    for v in verdicts.values():
        by_verdict[v.verdict].append(v.symbol)
    wanted = set(scope.symbols)
    return {
        "run_key": run_key,
        "scope": {**scope.as_dict(), "symbols": len(scope.symbols)},
        "checks": {
            "evaluated": len(results),
            "passed": sum(r.success for r in results),
            "failed": sum(not r.success and r.error is None and r.severity == "fail" for r in results),
            "warned": sum(not r.success and r.error is None and r.severity == "warn" for r in results),
            "errored": sum(r.error is not None for r in results),
        },
        "failed_checks": sorted(r.check for r in results if not r.success and r.severity == "fail"),
        "warned_checks": sorted(r.check for r in results if not r.success and r.severity == "warn"),
        "errors": {r.check: r.error for r in results if r.error},
        "verdicts": {k: len(v) for k, v in by_verdict.items()},
        "symbols_failed": sorted(by_verdict["fail"]),
        "symbols_warned": sorted(by_verdict["warn"]),
        # Findings no symbol of the scope can own (a NULL mart key): they fail their check, not a symbol.
        "unattributed": [f"{ex} [{r.check}]" for r in results for row in r.rows if row.get("symbol") not in wanted
                         for ex in (row.get("examples") or [])][:20],
        "seconds": {"validate": round(validate_seconds, 2), "total": round(total_seconds, 2)},
        "reports": paths,
    }
