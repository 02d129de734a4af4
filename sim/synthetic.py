"""Backtest histories for tests and benchmarks: the IBKR simulator's daily bars (the same generator its
``/iserver/marketdata/history`` uses: anchored paths for universe tickers, GBM for other names) COPYed into
``raw.daily_bars``, then dbt builds the mart from them.
Never used by production code (it writes simulated bars, tagged ``source = 'ibkr:IBKR-SIM'``)."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from datetime import date
from pathlib import Path


def load_simulator_bars(dsn: str, symbols: Sequence[str], sessions: int, start: date = date(2014, 1, 2),
                        seed: int = 42) -> int:
    """``sessions`` XNYS bars per symbol from ``start``; returns the rows loaded."""
    from include.marketdata import db
    from sim.ibkr.exchange import session_table
    from sim.ibkr.instruments import anchor_of
    from sim.ibkr.prices import daily_series

    table = session_table(date(2000, 1, 3))
    buffer = io.StringIO()
    rows = 0
    for symbol in symbols:
        s = daily_series(seed, symbol, table, start, sessions, anchor_of(symbol))
        for k in range(len(s)):
            day = date.fromordinal(int(s.ordinals[k])).isoformat()
            buffer.write(f"{symbol}\t0\t{day}\t{s.o[k]}\t{s.h[k]}\t{s.low[k]}\t{s.c[k]}\t{s.v[k]}\tibkr:IBKR-SIM\n")
            rows += 1
    buffer.seek(0)
    with db.connection(dsn) as conn:
        db.ensure_schema(conn)
        with conn, conn.cursor() as cur:
            cur.copy_expert("COPY raw.daily_bars (symbol, conid, session_date, open, high, low, close, volume, source)"
                            " FROM STDIN", buffer)
            cur.execute("ANALYZE raw.daily_bars")
    return rows


def build_mart(dsn: str, target: Path, select: str = "+fct_daily_indicators") -> None:
    """``dbt run --select <select>`` (default: staging -> intermediate -> the indicator mart) against ``dsn``."""
    from dbt.cli.main import dbtRunner

    from include.dbt_project import DBT_PROJECT_DIR, dbt_env

    env = dbt_env(dsn)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        res = dbtRunner().invoke(["run", "--select", select, "--project-dir", str(DBT_PROJECT_DIR),
                                  "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(target),
                                  "--log-path", str(target / "logs"), "--quiet"])
    finally:  # dbt reads DBT_* from the environment; leave it as it was
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if not res.success:
        raise RuntimeError(f"dbt run failed: {res.exception or res.result}")
