"""Run the real dbt project in-process against the test database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from include.dbt_project import DBT_PROJECT_DIR, dbt_env
from include.dbt_runtime import speed_up_dbt_adapter_start


@pytest.fixture
def dbt(clean_db, tmp_path_factory, monkeypatch):
    """``dbt("build")`` -> (success, results); DBT_* point at this session's clean database."""
    from dbt.cli.main import dbtRunner

    speed_up_dbt_adapter_start()  # as the DAG's dbt tasks run it
    for key, value in dbt_env(clean_db).items():
        monkeypatch.setenv(key, value)
    target = tmp_path_factory.mktemp("dbt-target")

    def _run(*args: str):
        res = dbtRunner().invoke([*args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir",
                                  str(DBT_PROJECT_DIR), "--target-path", str(target), "--log-path",
                                  str(Path(target) / "logs"), "--quiet"])
        return res.success, res.result

    return _run


@pytest.fixture
def load_bars():
    """``load_bars(dsn, simulator, symbols, sessions)``: real client -> loader, like the ingestion DAG."""
    from include.ibkr.client import IBKRClient
    from include.marketdata import db, loaders
    from include.marketdata.calendar import MarketCalendar

    def _load(dsn, simulator, symbols=("TSLA", "NVDA"), sessions=60):
        cal = MarketCalendar()
        end = cal.last_completed_session(datetime.now(UTC))
        with IBKRClient(simulator.base_url) as client, db.connection(dsn) as conn:
            client.ensure_session()
            for sym in symbols:
                bars = client.daily_bars(client.resolve_contract(sym), cal.sessions_back(end, sessions - 1), end)
                loaders.stage_bars(conn, "t", sym, bars, "ibkr:IBKR-SIM")
            loaders.upsert_staged_bars(conn, "t", list(symbols))

    return _load
