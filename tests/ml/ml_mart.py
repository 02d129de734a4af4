"""A dbt-built indicator mart from simulator bars with a learnable momentum (shared by the ML tests)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

SYMBOLS = ("TSLA", "NVDA", "AAPL")
PHI = 0.45  # AR(1) coefficient of the rewritten daily returns: tomorrow tends to follow today


def momentum_bars(dsn: str, simulator: object, symbols=SYMBOLS, sessions: int = 504, seed: int = 7) -> None:
    """Simulator bars through the real client and loader (as the ingestion DAG does), then closes rewritten as an
    AR(1) return process (the simulator's GBM is unpredictable by design; a model needs something to learn).
    Open = previous close; high/low bracket open and close; volumes stay the simulator's."""
    import numpy as np
    import psycopg2
    from psycopg2.extras import execute_values

    from include.ibkr.client import IBKRClient
    from include.marketdata import db, loaders
    from include.marketdata.calendar import MarketCalendar

    cal = MarketCalendar()
    end = cal.last_completed_session(datetime.now(UTC))
    with IBKRClient(simulator.base_url) as client, db.connection(dsn) as conn:
        client.ensure_session()
        for sym in symbols:
            bars = client.daily_bars(client.resolve_contract(sym), cal.sessions_back(end, sessions - 1), end)
            loaders.stage_bars(conn, "ml-test", sym, bars, "ibkr:IBKR-SIM")
        loaders.upsert_staged_bars(conn, "ml-test", list(symbols))
    rng = np.random.default_rng(seed)
    rows = []
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        for sym in symbols:
            cur.execute("SELECT session_date FROM raw.daily_bars WHERE symbol = %s ORDER BY session_date", (sym,))
            days = [d for (d,) in cur.fetchall()]
            returns = np.zeros(len(days))
            noise = rng.normal(0.0, 0.012, len(days))
            for i in range(1, len(days)):
                returns[i] = PHI * returns[i - 1] + noise[i]
            close = 100.0 * np.cumprod(1.0 + returns)
            opens = np.concatenate([[close[0]], close[:-1]])
            for day, o, c in zip(days, opens, close, strict=True):
                rows.append((sym, day, float(o), float(max(o, c) * 1.003), float(min(o, c) * 0.997), float(c)))
        execute_values(
            cur,
            """UPDATE raw.daily_bars b SET open = v.o, high = v.h, low = v.l, close = v.c
                               FROM (VALUES %s) AS v(symbol, session_date, o, h, l, c)
                               WHERE b.symbol = v.symbol AND b.session_date = v.session_date""",
            rows,
        )


def build_mart(dsn: str, target: Path) -> None:
    """``dbt run`` of the marts (and what they need) in-process against ``dsn``."""
    from sim.synthetic import build_mart as dbt_run

    dbt_run(dsn, target, select="+fct_latest_features")
