"""Bar rewrites the trading DAG tests share."""

from __future__ import annotations

import psycopg2

# Every symbol's bars become a steady 0.2 %-a-session decline ending at its real last close: RSI 0 (an RSI strategy
# BUYs with confidence 1), no SMA cross (an SMA crossover HOLDs), prices near the simulator's quotes.
STEADY_DECLINE = """
    WITH k AS (SELECT symbol, session_date,
                      count(*) OVER (PARTITION BY symbol ORDER BY session_date DESC) - 1 AS back,
                      first_value(close) OVER (PARTITION BY symbol ORDER BY session_date DESC) AS last_close
               FROM raw.daily_bars)
    UPDATE raw.daily_bars b SET close = k.last_close * (1 + 0.002 * k.back),
        open = k.last_close * (1.001 + 0.002 * k.back), high = k.last_close * (1.002 + 0.002 * k.back),
        low = k.last_close * (0.999 + 0.002 * k.back)
    FROM k WHERE b.symbol = k.symbol AND b.session_date = k.session_date"""


def steady_decline(dsn: str) -> None:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(STEADY_DECLINE)
