"""Indicator mart build rate vs a plain CREATE TABLE AS SELECT copy, and a daily incremental run vs a full refresh.

500 symbols x 10 years of synthetic random-walk bars are generated in PostgreSQL; then
``dbt run --select fct_daily_indicators`` (the real model) is timed against a CTAS of its input, and
``dbt run --select +fct_daily_indicators`` after one new session per symbol against the same with --full-refresh.
"""

from __future__ import annotations

import os
import time

from bench.common import scratch_database

SYMBOLS = int(os.environ.get("BENCH_SYMBOLS", "500"))
SESSIONS = int(os.environ.get("BENCH_YEARS", "10")) * 252

_FILL = """
INSERT INTO raw.daily_bars (symbol, conid, session_date, open, high, low, close, volume, source)
SELECT symbol, 0, date '2010-01-04' + rn, c * 0.999, c * 1.01, c * 0.99, c, 1e6 + rn, 'bench'
FROM (
    SELECT 'S' || lpad(s::text, 4, '0') AS symbol, rn,
           100 * exp(sum((random() - 0.5) * 0.04) OVER (PARTITION BY s ORDER BY rn)) AS c
    FROM generate_series(1, %(symbols)s) s, generate_series(0, %(sessions)s - 1) rn
) walk
"""


_NEXT_SESSION = """
INSERT INTO raw.daily_bars (symbol, conid, session_date, open, high, low, close, volume, source)
SELECT symbol, 0, date '2010-01-04' + %(sessions)s, close, close * 1.01, close * 0.99, close * 1.002, 1e6, 'bench'
FROM raw.daily_bars WHERE session_date = date '2010-01-04' + %(sessions)s - 1
"""


def main() -> None:
    import psycopg2
    from dbt.cli.main import dbtRunner

    from include.dbt_project import DBT_PROJECT_DIR, dbt_env
    from include.marketdata import db

    with scratch_database("bench_dbt") as dsn:
        with db.connection(dsn) as conn:
            db.ensure_schema(conn)
            with conn, conn.cursor() as cur:
                cur.execute(_FILL, {"symbols": SYMBOLS, "sessions": SESSIONS})
                cur.execute("ANALYZE raw.daily_bars")
        os.environ.update(dbt_env(dsn))
        args = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
                "--target-path", "/tmp/bench-dbt-target", "--log-path", "/tmp/bench-dbt-logs", "--quiet"]
        runner = dbtRunner()
        assert runner.invoke(["run", "--select", "+int_daily_bars_enriched", *args]).success
        t0 = time.perf_counter()
        assert runner.invoke(["run", "--select", "fct_daily_indicators", *args]).success
        t_mart = time.perf_counter() - t0
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            t1 = time.perf_counter()
            cur.execute("CREATE TABLE ctas_copy AS SELECT * FROM analytics_intermediate.int_daily_bars_enriched")
            conn.commit()
            t_ctas = time.perf_counter() - t1
            t1 = time.perf_counter()
            cur.execute("CREATE TABLE ctas_mart AS SELECT * FROM analytics_marts.fct_daily_indicators")
            conn.commit()
            t_ctas_mart = time.perf_counter() - t1
            cur.execute("SELECT count(*) FROM analytics_marts.fct_daily_indicators")
            rows = cur.fetchone()[0]
        print(f"{SYMBOLS} symbols x {SESSIONS} sessions = {rows:,} rows")
        print(f"fct_daily_indicators (dbt run): {t_mart:6.2f} s  ({rows / t_mart:,.0f} rows/s)")
        print(f"CTAS copy of its input rows   : {t_ctas:6.2f} s  ({rows / t_ctas:,.0f} rows/s)")
        print(f"CTAS copy of its output rows  : {t_ctas_mart:6.2f} s  ({rows / t_ctas_mart:,.0f} rows/s)")
        print(f"mart / copy time: {t_mart / t_ctas:.1f}x the input copy, {t_mart / t_ctas_mart:.1f}x the output copy"
              " (goal <= 5x)")

        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:  # the next session's bar for every symbol
            cur.execute(_NEXT_SESSION, {"sessions": SESSIONS})
        t0 = time.perf_counter()
        assert runner.invoke(["run", "--select", "+fct_daily_indicators", *args]).success
        t_incremental = time.perf_counter() - t0
        t0 = time.perf_counter()
        assert runner.invoke(["run", "--select", "+fct_daily_indicators", "--full-refresh", *args]).success
        t_full = time.perf_counter() - t0
        print(f"daily incremental run (+1 session per symbol): {t_incremental:6.2f} s")
        print(f"full refresh of the same models             : {t_full:6.2f} s")
        print(f"incremental / full refresh: {t_incremental / t_full:.3f}x (goal <= 0.1x)")


if __name__ == "__main__":
    main()
