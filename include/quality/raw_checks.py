"""Checks of the raw daily bars (``raw.daily_bars``) for the scope's symbols and sessions.

What fails, what only warns, and why: docs/data-quality.md.
"""

from __future__ import annotations

import math

from include.quality.checks import (
    Check,
    Scope,
    any_of,
    date_array,
    date_lit,
    finite,
    not_finite_reason,
    per_symbol,
    reasons,
    row_label,
    text_array,
)

PRICES = ("open", "high", "low", "close")
DEFAULT_MAX_DAILY_MOVE = 0.4  # |close / previous close - 1|; Settings.quality_max_daily_move (QUALITY_MAX_DAILY_MOVE)


def _bars_cte(scope: Scope) -> str:
    return (
        "bars AS NOT MATERIALIZED (\n"
        "    SELECT b.symbol, b.conid, b.session_date, b.open, b.high, b.low, b.close, b.volume, b.source\n"
        "    FROM {batch} AS b\n"
        f"    WHERE b.symbol = ANY({text_array(scope.symbols)})\n"
        f"      AND b.session_date BETWEEN {date_lit(scope.start)} AND {date_lit(scope.end)}\n)"
    )


def _symbols_cte(scope: Scope) -> str:
    return f"wanted AS NOT MATERIALIZED (SELECT symbol FROM unnest({text_array(scope.symbols)}) AS s(symbol))"


def _latest_cte(scope: Scope) -> str:
    """Each symbol's latest bar in the range and how many sessions of the range follow it (one index probe each)."""
    return (
        "latest AS NOT MATERIALIZED (\n"
        "    SELECT w.symbol, l.last_bar,\n"
        f"           (SELECT count(*) FROM unnest({date_array(scope.sessions)}) AS c(d) WHERE c.d > l.last_bar)"
        " AS behind\n"
        "    FROM wanted AS w\n"
        "    CROSS JOIN LATERAL (SELECT max(x.session_date) AS last_bar FROM bars AS x\n"
        "                        WHERE x.symbol = w.symbol) AS l\n"
        "    WHERE l.last_bar IS NOT NULL\n)"
    )


def _moves_ctes(scope: Scope) -> str:
    """Each bar's close with the previous bar's close and date. The first bar of the range is compared with the
    symbol's last bar before the range (one index probe), so a narrow run still sees a jump into its range."""
    return (
        "prior AS NOT MATERIALIZED (\n"
        "    SELECT w.symbol, p.session_date, p.close FROM wanted AS w\n"
        "    CROSS JOIN LATERAL (SELECT a.session_date, a.close FROM {batch} AS a WHERE a.symbol = w.symbol"
        f" AND a.session_date < {date_lit(scope.start)}\n"
        "                        ORDER BY a.session_date DESC LIMIT 1) AS p\n),\n"
        "moves AS NOT MATERIALIZED (\n"
        "    SELECT symbol, session_date, close,\n"
        "           lag(close) OVER w AS prev_close, lag(session_date) OVER w AS prev_date\n"
        "    FROM (SELECT symbol, session_date, close FROM bars\n"
        "          UNION ALL SELECT symbol, session_date, close FROM prior) AS u\n"
        "    WINDOW w AS (PARTITION BY symbol ORDER BY session_date)\n)"
    )


def _jump_check(scope: Scope, bars: str, wanted: str, max_daily_move: float) -> Check:
    if not (isinstance(max_daily_move, int | float) and math.isfinite(max_daily_move) and max_daily_move > 0):
        raise ValueError(f"max_daily_move must be a positive fraction (0.4 = 40 %), got {max_daily_move!r}")
    limit = repr(float(max_daily_move))  # a validated float pasted into SQL
    shown = f"{max_daily_move * 100:g}%"
    move = "(close / prev_close - 1)"
    message = (f"{row_label()} || 'close ' || close || ' is ' || CASE WHEN close > prev_close THEN '+' ELSE '' END"
               f" || round(({move} * 100)::numeric, 1) || '% from ' || prev_close || ' on ' || prev_date"
               f" || ' (more than {shown})'")
    return Check(
        "raw_no_price_jump", "fail",
        f"No close-to-close move above {shown} (daily history is split-adjusted: a split is not a jump; raise "
        "QUALITY_MAX_DAILY_MOVE for a genuine one).", per_symbol(
            f"{bars},\n{wanted},\n{_moves_ctes(scope)}",
            f"SELECT symbol, session_date, {message} AS message\n"
            f"FROM moves WHERE session_date >= {date_lit(scope.start)} AND {finite('close', 'prev_close')}\n"
            f"  AND close > 0 AND prev_close > 0 AND abs{move} > {limit}"))


def raw_checks(
    scope: Scope, stale_fail_after: int = 5, max_daily_move: float = DEFAULT_MAX_DAILY_MOVE
) -> list[Check]:
    bars = _bars_cte(scope)
    wanted = _symbols_cte(scope)
    label = row_label()
    span = f"between {scope.start.isoformat()} and {scope.end.isoformat()}"
    values = [not_finite_reason(c) for c in (*PRICES, "volume")]
    values += [("conid IS NULL", "'conid is NULL'"), ("source IS NULL", "'source is NULL'")]
    positive = [(f"{c} <= 0", f"'{c} ' || {c} || ' <= 0'") for c in PRICES]
    ohlc = [
        ("high < greatest(open, close)", "'high ' || high || ' < max(open, close) ' || greatest(open, close)"),
        ("low > least(open, close)", "'low ' || low || ' > min(open, close) ' || least(open, close)"),
    ]
    # high < low says it all; otherwise name the bound(s) open/close break.
    ohlc_msg = f"CASE WHEN high < low THEN 'high ' || high || ' < low ' || low ELSE {reasons(ohlc)} END"
    behind_msg = (f"symbol || ': latest bar ' || last_bar || ' is ' || behind || ' session(s) behind the last "
                  f"completed {scope.exchange} session {scope.end.isoformat()}'")
    return [
        Check("raw_bars_present", "fail", f"Every symbol has bars {span}.", per_symbol(
            f"{bars},\n{wanted}",
            f"SELECT w.symbol, NULL::date AS session_date, w.symbol || ': no bars {span}' AS message\n"
            "FROM wanted AS w WHERE NOT EXISTS (SELECT 1 FROM bars AS x WHERE x.symbol = w.symbol)")),
        Check("raw_values_not_null_or_nan", "fail", "No NULL, NaN or infinite value in any bar.", per_symbol(
            bars, f"SELECT symbol, session_date, {label} || {reasons(values)} AS message\n"
                  f"FROM bars WHERE {any_of(values)}")),
        Check("raw_prices_positive", "fail", "open, high, low and close are > 0.", per_symbol(
            bars, f"SELECT symbol, session_date, {label} || {reasons(positive)} AS message\n"
                  f"FROM bars WHERE {finite(*PRICES)} AND {any_of(positive)}")),
        Check("raw_volume_non_negative", "fail", "volume >= 0.", per_symbol(
            bars, f"SELECT symbol, session_date, {label} || 'volume ' || volume || ' < 0' AS message\n"
                  f"FROM bars WHERE {finite('volume')} AND volume < 0")),
        Check("raw_ohlc_consistent", "fail", "high >= max(open, close) and low <= min(open, close).", per_symbol(
            bars, f"SELECT symbol, session_date, {label} || {ohlc_msg} AS message\n"
                  f"FROM bars WHERE {finite(*PRICES)} AND (high < low OR {any_of(ohlc)})")),
        Check("raw_one_bar_per_session", "fail",
              f"At most one bar per symbol and {scope.exchange} session; no bar on other days.", per_symbol(
            bars,
            f"SELECT symbol, session_date, {label} || count(*) || ' bars for one session' AS message\n"
            "FROM bars GROUP BY symbol, session_date HAVING count(*) > 1\n"
            "UNION ALL\n"
            f"SELECT symbol, session_date, {label} || 'bar on a day that is not a {scope.exchange} session'\n"
            f"FROM bars AS x WHERE NOT EXISTS (SELECT 1 FROM unnest({date_array(scope.sessions)}) AS c(d)"
            " WHERE c.d = x.session_date)")),
        Check("raw_no_missing_sessions", "fail",
              f"A bar for every {scope.exchange} session from the symbol's first bar (or the range start) to its "
              "latest bar.", per_symbol(
            f"{bars},\n{wanted},\n"
            "spans AS NOT MATERIALIZED (\n"
            f"    SELECT w.symbol, greatest(f.first_bar, {date_lit(scope.start)}) AS lo, l.last_bar AS hi\n"
            "    FROM wanted AS w\n"
            # The first bar ever, not in the range: a deleted first session of the range is still a gap.
            "    CROSS JOIN LATERAL (SELECT min(a.session_date) AS first_bar FROM {batch} AS a"
            " WHERE a.symbol = w.symbol) AS f\n"
            "    CROSS JOIN LATERAL (SELECT max(x.session_date) AS last_bar FROM bars AS x"
            " WHERE x.symbol = w.symbol) AS l\n)",
            f"SELECT sp.symbol, c.d AS session_date, {row_label('sp.symbol', 'c.d')} || 'no bar for this "
            f"{scope.exchange} session' AS message\n"
            f"FROM spans AS sp JOIN unnest({date_array(scope.sessions)}) AS c(d) ON c.d BETWEEN sp.lo AND sp.hi\n"
            "WHERE NOT EXISTS (SELECT 1 FROM bars AS x WHERE x.symbol = sp.symbol AND x.session_date = c.d)")),
        _jump_check(scope, bars, wanted, max_daily_move),
        Check("raw_fresh", "warn",
              f"The latest bar is the last completed {scope.exchange} session ({scope.end.isoformat()}); "
              f"warns up to {stale_fail_after} sessions behind.", per_symbol(
            f"{bars},\n{wanted},\n{_latest_cte(scope)}",
            f"SELECT symbol, last_bar AS session_date, {behind_msg} AS message\n"
            f"FROM latest WHERE behind BETWEEN 1 AND {int(stale_fail_after)}")),
        Check("raw_not_stale", "fail",
              f"The latest bar is at most {stale_fail_after} sessions older than the last completed session.",
              per_symbol(
            f"{bars},\n{wanted},\n{_latest_cte(scope)}",
            f"SELECT symbol, last_bar AS session_date, {behind_msg} AS message\n"
            f"FROM latest WHERE behind > {int(stale_fail_after)}")),
    ]
