"""What a validation run covers (``Scope``), one data-quality check (``Check``) and the SQL plumbing they share.

A check's query contract (one row per offending symbol over ``{batch}``) and why: docs/data-quality.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal

Severity = Literal["fail", "warn"]
# Checks never join rows of different symbols, so one symbol's bad data cannot change another's verdict.
EXAMPLES_PER_SYMBOL = 3
_RELATION_RE = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Scope:
    """Symbols and the exchange sessions (ascending, both ends included) a validation run checks."""

    symbols: tuple[str, ...]
    sessions: tuple[date, ...]
    exchange: str = "XNYS"

    def __post_init__(self) -> None:
        if not self.sessions:
            raise ValueError("a quality scope needs at least one exchange session")
        if list(self.sessions) != sorted(set(self.sessions)):
            raise ValueError("scope sessions must be ascending and unique")

    @property
    def start(self) -> date:
        return self.sessions[0]

    @property
    def end(self) -> date:
        """The last completed session when the run started: what 'fresh' means."""
        return self.sessions[-1]

    def as_dict(self) -> dict[str, object]:
        return {"symbols": list(self.symbols), "start": self.start.isoformat(), "end": self.end.isoformat(),
                "sessions": len(self.sessions), "exchange": self.exchange}


@dataclass(frozen=True)
class Check:
    """One named check of a suite; ``severity`` decides whether its findings fail or only warn a symbol."""

    name: str
    severity: Severity
    description: str
    query: str  # per-symbol aggregate over {batch}, see per_symbol()


def relation(name: str) -> str:
    """A ``schema.table`` name checked against a strict pattern (it is pasted into SQL)."""
    if not _RELATION_RE.match(name):
        raise ValueError(f"relation {name!r} must look like schema.table (lower-case identifiers)")
    return name


def quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def text_array(values: Iterable[str]) -> str:
    # ARRAY[...] rather than a '{...}' literal: GX parses queries as format strings.
    return "ARRAY[" + ", ".join(quote(v) for v in values) + "]::text[]"


def date_lit(day: date) -> str:
    return f"DATE '{day.isoformat()}'"


def date_array(days: Iterable[date]) -> str:
    return "ARRAY[" + ", ".join(f"'{d.isoformat()}'" for d in days) + "]::date[]"


def finite(*columns: str) -> str:
    """True when every column is a number other than NaN/±Infinity (NaN sorts above Infinity in PostgreSQL)."""
    return " AND ".join(f"({c} > '-Infinity'::float8 AND {c} < 'Infinity'::float8)" for c in columns)


def not_finite_reason(column: str) -> tuple[str, str]:
    """(condition, message) for a NULL, NaN or infinite value in ``column``."""
    return (f"({column} IS NULL OR {column} IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8))",
            f"'{column} is ' || coalesce({column}::text, 'NULL')")


def reasons(pairs: Iterable[tuple[str, str]]) -> str:
    """``concat_ws`` of the messages whose condition holds: every problem of a row in one message."""
    return "concat_ws(', ', " + ", ".join(f"CASE WHEN {cond} THEN {msg} END" for cond, msg in pairs) + ")"


def any_of(pairs: Iterable[tuple[str, str]]) -> str:
    return "(" + " OR ".join(cond for cond, _ in pairs) + ")"


def per_symbol(ctes: str, detail: str) -> str:
    """Aggregate detail rows ``(symbol, session_date, message)`` to one row per symbol, first examples by date.

    ``ctes`` are ``name AS NOT MATERIALIZED (...)`` definitions: inlined, so filters and indexes reach the tables.
    """
    return (
        f"WITH {ctes},\ndetail AS (\n{detail}\n)\n"
        "SELECT symbol, count(*) AS sessions, min(session_date)::text AS first_date,\n"
        f"       (array_agg(message ORDER BY session_date NULLS FIRST))[1:{EXAMPLES_PER_SYMBOL}] AS examples\n"
        "FROM detail GROUP BY symbol ORDER BY symbol NULLS FIRST"
    )


def row_label(symbol: str = "symbol", session_date: str = "session_date") -> str:
    """SQL for ``'TSLA 2026-03-04: '``, the prefix of every per-row message."""
    return f"{symbol} || ' ' || coalesce({session_date}::text, '(no date)') || ': '"
