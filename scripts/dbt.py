"""``make dbt ARGS="build"``: the dbt CLI with its profile pointed at MARKET_DB_URL.

Without MARKET_DB_URL it uses the embedded PostgreSQL of ``make demo`` (starting it if needed and
stopping it again afterwards). Any dbt command works: build, test, docs generate, source freshness.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from include.dbt_project import DBT_PROJECT_DIR, dbt_env
from scripts.devstack import MARKET_DB, embedded_postgres


def _has_raw_bars(url: str) -> bool:
    import psycopg2

    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('raw.daily_bars') IS NOT NULL")
        return bool(cur.fetchone()[0])


def main(args: list[str]) -> int:
    url = os.environ.get("MARKET_DB_URL")
    server = None
    if not url:
        server = embedded_postgres().start()
        url = server.ensure_database(MARKET_DB)
    try:
        if not _has_raw_bars(url):
            print("raw.daily_bars does not exist yet: run `make demo` first (or set MARKET_DB_URL to a loaded "
                  "database)", file=sys.stderr)
            return 2
        env = {**os.environ, **dbt_env(url), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        dbt = str(Path(sys.executable).with_name("dbt"))
        cmd = [dbt, *(args or ["build"]), "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
        return subprocess.call(cmd, env=env)
    finally:
        if server is not None and server.started_here:
            server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
