"""Checks of the indicator mart (``analytics_marts.fct_daily_indicators``) for the scope's symbols and sessions.

What fails, what only warns, and which columns are relied on: docs/data-quality.md.
"""

from __future__ import annotations

from include.quality.checks import (
    Check,
    Scope,
    any_of,
    date_lit,
    finite,
    not_finite_reason,
    per_symbol,
    reasons,
    row_label,
    text_array,
)

# Leading NULL rows of each indicator in TA-Lib's conventions (the first value is at this 0-based row).
WARMUP_ROWS = {
    "sma_20": 19, "sma_50": 49, "sma_200": 199, "ema_12": 11, "ema_26": 25, "macd": 33, "macd_signal": 33,
    "macd_hist": 33, "rsi_14": 14, "bb_upper": 19, "bb_middle": 19, "bb_lower": 19, "atr_14": 14,
    "volume_zscore_20": 19,
}  # fmt: skip
# NULL after warm-up is legitimate for the volume z-score (volume did not vary over 20 sessions).
MAY_BE_NULL = frozenset({"volume_zscore_20"})
# Relative slack for the band order: bb_middle -/+ 2 * stddev computed from window sums.
BAND_TOLERANCE = 1e-9


def _rows_cte(scope: Scope) -> str:
    return (
        "rows AS NOT MATERIALIZED (\n"
        "    SELECT b.* FROM {batch} AS b\n"
        f"    WHERE b.symbol = ANY({text_array(scope.symbols)})\n"
        f"      AND b.session_date BETWEEN {date_lit(scope.start)} AND {date_lit(scope.end)}\n)"
    )


def _cutoffs_cte(scope: Scope) -> str:
    """Per symbol, the session of its row number n (0-based) for each warm-up length n: from there on the
    indicator must be set. A few index probes per symbol instead of numbering every row with a window."""
    probes = "".join(
        f"    LEFT JOIN LATERAL (SELECT b.session_date AS d FROM {{batch}} AS b WHERE b.symbol = w.symbol"
        f" ORDER BY b.session_date OFFSET {n} LIMIT 1) AS c{n} ON true\n"
        for n in sorted(set(WARMUP_ROWS.values()))
    )
    cols = ", ".join(f"c{n}.d AS from_{n}" for n in sorted(set(WARMUP_ROWS.values())))
    return (f"cutoffs AS MATERIALIZED (\n    SELECT w.symbol, {cols}\n"
            f"    FROM unnest({text_array(scope.symbols)}) AS w(symbol)\n{probes})")


def _history_cte(scope: Scope) -> str:
    """Per symbol, its latest mart row in the range and that row's 0-based number (counted up to the longest
    warm-up only: beyond it nothing is warming up)."""
    longest = max(WARMUP_ROWS.values()) + 1
    return (
        "history AS NOT MATERIALIZED (\n"
        "    SELECT w.symbol, l.last_row, n.idx\n"
        f"    FROM unnest({text_array(scope.symbols)}) AS w(symbol)\n"
        "    CROSS JOIN LATERAL (SELECT max(y.session_date) AS last_row FROM rows AS y\n"
        "                        WHERE y.symbol = w.symbol) AS l\n"
        "    CROSS JOIN LATERAL (SELECT count(*) - 1 AS idx FROM (SELECT 1 FROM {batch} AS b WHERE b.symbol = w.symbol"
        f" AND b.session_date <= l.last_row ORDER BY b.session_date LIMIT {longest}) AS h) AS n\n"
        "    WHERE l.last_row IS NOT NULL\n)"
    )


def mart_checks(scope: Scope, raw_relation: str = "raw.daily_bars") -> list[Check]:
    rows = _rows_cte(scope)
    label = row_label()
    in_range = f"BETWEEN {date_lit(scope.start)} AND {date_lit(scope.end)}"
    # close must be set; indicator NULLs are the warm-up checks' business.
    values = [not_finite_reason("close")] + [
        (f"{c} IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)", f"'{c} is ' || {c}") for c in WARMUP_ROWS
    ]
    tol = f"{BAND_TOLERANCE} * abs(bb_middle)"
    bands = [(f"bb_lower > bb_middle + {tol}", "'bb_lower ' || bb_lower || ' > bb_middle ' || bb_middle"),
             (f"bb_middle > bb_upper + {tol}", "'bb_middle ' || bb_middle || ' > bb_upper ' || bb_upper")]
    after_warmup = [(f"r.{c} IS NULL AND r.session_date >= c.from_{n}",
                     f"'{c} is NULL after its {n}-session warm-up (first value due ' || c.from_{n} || ')'")
                    for c, n in WARMUP_ROWS.items() if c not in MAY_BE_NULL]
    warming = [(f"idx < {n}", f"'{c} (needs {n + 1})'") for c, n in WARMUP_ROWS.items()]
    wanted = f"unnest({text_array(scope.symbols)}) AS w(symbol)"
    return [
        Check("mart_keys_not_null", "fail", "symbol and session_date are never NULL.", per_symbol(
            "mart_keys AS NOT MATERIALIZED (SELECT b.symbol, b.session_date FROM {batch} AS b)",
            f"SELECT symbol, session_date, coalesce(symbol, '(NULL symbol)') || ' ' || "
            "coalesce(session_date::text, '(no date)') || ': NULL key' AS message\n"
            f"FROM mart_keys WHERE (symbol IS NULL OR session_date IS NULL)"
            f" AND (symbol IS NULL OR symbol = ANY({text_array(scope.symbols)}))")),
        Check("mart_keys_unique", "fail", "One row per symbol and session.", per_symbol(
            rows, f"SELECT symbol, session_date, {label} || count(*) || ' rows for one session' AS message\n"
                  "FROM rows GROUP BY symbol, session_date HAVING count(*) > 1")),
        Check("mart_latest_session", "fail", f"The mart's latest session per symbol is {raw_relation}'s.",
              per_symbol(
            rows,
            "SELECT w.symbol, r.last_bar AS session_date, w.symbol || ': latest bar ' || r.last_bar || "
            "' but the mart ' || coalesce('ends at ' || m.last_row, 'has no rows') || ' in the range' AS message\n"
            f"FROM {wanted}\n"
            f"CROSS JOIN LATERAL (SELECT max(x.session_date) AS last_bar FROM {raw_relation} AS x"
            f" WHERE x.symbol = w.symbol AND x.session_date {in_range}) AS r\n"
            "CROSS JOIN LATERAL (SELECT max(y.session_date) AS last_row FROM rows AS y"
            " WHERE y.symbol = w.symbol) AS m\n"
            "WHERE r.last_bar IS NOT NULL AND m.last_row IS DISTINCT FROM r.last_bar")),
        Check("mart_rows_for_all_bars", "fail", f"Every bar of {raw_relation} in the range has its mart row.",
              per_symbol(
            rows,
            f"SELECT x.symbol, x.session_date, {row_label('x.symbol', 'x.session_date')} || "
            f"'bar in {raw_relation} has no mart row' AS message\n"
            f"FROM {raw_relation} AS x\n"
            f"WHERE x.symbol = ANY({text_array(scope.symbols)}) AND x.session_date {in_range}\n"
            "  AND NOT EXISTS (SELECT 1 FROM rows AS y\n"
            "                  WHERE y.symbol = x.symbol AND y.session_date = x.session_date)")),
        Check("mart_values_not_nan", "fail", "close is set; no NaN or infinite close or indicator.", per_symbol(
            rows, f"SELECT symbol, session_date, {label} || {reasons(values)} AS message\n"
                  f"FROM rows WHERE {any_of(values)}")),
        Check("mart_rsi_in_range", "fail", "rsi_14 is within [0, 100].", per_symbol(
            rows, f"SELECT symbol, session_date, {label} || 'rsi_14 ' || rsi_14 || ' outside [0, 100]' AS message\n"
                  f"FROM rows WHERE {finite('rsi_14')} AND (rsi_14 < 0 OR rsi_14 > 100)")),
        Check("mart_atr_non_negative", "fail", "atr_14 >= 0.", per_symbol(
            rows, f"SELECT symbol, session_date, {label} || 'atr_14 ' || atr_14 || ' < 0' AS message\n"
                  f"FROM rows WHERE {finite('atr_14')} AND atr_14 < 0")),
        Check("mart_bollinger_ordered", "fail", "bb_lower <= bb_middle <= bb_upper.", per_symbol(
            rows, f"SELECT symbol, session_date, {label} || {reasons(bands)} AS message\n"
                  f"FROM rows WHERE {finite('bb_lower', 'bb_middle', 'bb_upper')} AND {any_of(bands)}")),
        Check("mart_nulls_only_in_warmup", "fail",
              "Indicators are NULL only in their warm-up rows (sma_200: a symbol's first 199 sessions).", per_symbol(
            f"{rows},\n{_cutoffs_cte(scope)}",
            f"SELECT r.symbol, r.session_date, {row_label('r.symbol', 'r.session_date')} || {reasons(after_warmup)}"
            " AS message\n"
            f"FROM rows AS r JOIN cutoffs AS c ON c.symbol = r.symbol WHERE {any_of(after_warmup)}")),
        Check("mart_warmup_complete", "warn",
              "The latest session is past every indicator's warm-up (enough history for sma_200).", per_symbol(
            f"{rows},\n{_history_cte(scope)}",
            f"SELECT symbol, last_row AS session_date, {row_label('symbol', 'last_row')} || 'only ' || idx + 1 || "
            f"' sessions of history; warming up: ' || {reasons(warming)} AS message\n"
            f"FROM history WHERE {any_of(warming)}")),
    ]
