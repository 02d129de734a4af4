"""Where the dbt project lives and how its profile reaches the market-data database.

``dbt/ibkr_market/profiles.yml`` reads DBT_* variables; ``dbt_env`` derives them from the one
``MARKET_DB_URL`` the rest of the project uses (Cosmos and GX need TCP, never a unix socket).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt" / "ibkr_market"


def dbt_env(market_db_url: str, schema: str = "analytics") -> dict[str, str]:
    parts = urlsplit(market_db_url)
    if not parts.hostname or parts.hostname.startswith("/"):
        raise ValueError("MARKET_DB_URL must name a TCP host for dbt, e.g. postgresql://user@127.0.0.1:5432/market")
    return {
        "DBT_HOST": parts.hostname,
        "DBT_PORT": str(parts.port or 5432),
        "DBT_USER": unquote(parts.username or "postgres"),
        "DBT_PASSWORD": unquote(parts.password or "postgres"),  # dbt-postgres wants one even with trust auth
        "DBT_DBNAME": parts.path.lstrip("/") or "postgres",
        "DBT_SCHEMA": schema,
    }
