"""Fixtures for the data-quality tests: bars from the simulator, dbt in-process, and a ``validate`` shortcut."""

from __future__ import annotations

import psycopg2
import pytest

from tests.dbt.conftest import dbt, load_bars  # noqa: F401 - reused fixtures (real client -> loader, real dbt)


def sql(dsn: str, statement: str, params: object = None) -> list[tuple] | None:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall() if cur.description else None


@pytest.fixture
def validate(clean_db, tmp_path):
    """``validate(symbols=None, sessions=252, run_key="test/run", **config)`` -> QualityRun on the clean database."""
    from include.quality.validate import QualityConfig, resolve_scope, validate_market_data

    def _validate(symbols=None, sessions=252, run_key="test/run", **config):
        cfg = QualityConfig(**config)
        scope = resolve_scope(clean_db, symbols, sessions, raw_relation=cfg.raw_relation)
        return validate_market_data(clean_db, scope, run_key, reports_dir=tmp_path / "reports", config=cfg)

    return _validate


def findings(run, check: str) -> dict[str, list[str]]:
    """{symbol: example messages} of one check in a QualityRun."""
    (result,) = [r for r in run.results if r.check == check]
    assert result.error is None, result.error
    return {row["symbol"]: row["examples"] for row in result.rows}
