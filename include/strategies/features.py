"""Read the strategy inputs from the dbt marts: the latest row per symbol and the session before it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

LATEST_TABLE = "analytics_marts.fct_latest_features"
HISTORY_TABLE = "analytics_marts.fct_daily_indicators"

_LATEST_SQL = f"SELECT * FROM {LATEST_TABLE} WHERE symbol = ANY(%s)"
# The session right before each symbol's latest features row (crossover strategies compare the two).
_PREVIOUS_SQL = f"""
SELECT DISTINCT ON (h.symbol) h.*
FROM {HISTORY_TABLE} h
JOIN {LATEST_TABLE} l ON l.symbol = h.symbol AND h.session_date < l.session_date
WHERE h.symbol = ANY(%s)
ORDER BY h.symbol, h.session_date DESC
"""


def _plain(value: Any) -> Any:
    # Keep rows JSON-friendly for XCom: numerics as float; dates/timestamps stay as Python objects.
    return float(value) if isinstance(value, Decimal) else value


def _rows(cur: Any) -> dict[str, dict[str, Any]]:
    names = [d[0] for d in cur.description]
    rows = ({n: _plain(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall())
    return {row["symbol"]: row for row in rows}


def load_features(dsn: str, symbols: Iterable[str]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """``(latest, previous)`` keyed by symbol; symbols without rows are absent (the strategies HOLD on them).

    A missing mart (dbt has not run) raises: trading on no data must fail loudly, not produce HOLDs quietly.
    """
    import psycopg2

    wanted = sorted({s.upper() for s in symbols})
    with psycopg2.connect(dsn, application_name="ibkr-airflow-signals") as conn, conn.cursor() as cur:
        cur.execute(_LATEST_SQL, (wanted,))
        latest = _rows(cur)
        cur.execute(_PREVIOUS_SQL, (wanted,))
        previous = _rows(cur)
    conn.close()
    return latest, previous


def json_ready(row: dict[str, Any]) -> dict[str, Any]:
    """A features row with dates/timestamps as ISO strings (for XCom and MLflow artifacts)."""
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in row.items()}
