"""A MARKET_DB_URL without a password (trust auth, e.g. postgresql://postgres@127.0.0.1:5432/market) works for the
dbt CLI (make dbt), Cosmos's profile and Great Expectations, against the session's real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from include.dbt_project import DBT_PROJECT_DIR, PLACEHOLDER_PASSWORD, dbt_env, postgres_profile_mapping

REPO = Path(__file__).resolve().parents[2]


def without_password(url: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username or 'postgres'}@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


@pytest.fixture(scope="module")
def passwordless_db(pg_admin_url: str):
    """A throw-away database with the raw schema, as a URL without a password (the server trusts 127.0.0.1)."""
    import psycopg2

    from include.marketdata import db

    name = f"nopw_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(pg_admin_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    url = without_password(pg_admin_url.rsplit("/", 1)[0] + f"/{name}")
    assert urlsplit(url).password is None
    try:
        with db.connection(url) as conn:  # trust auth: psycopg2 needs no password
            db.ensure_schema(conn)
        yield url
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_dbt_env_gives_a_placeholder_password_only_when_the_url_has_none():
    assert dbt_env("postgresql://postgres@db:5433/market")["DBT_PASSWORD"] == PLACEHOLDER_PASSWORD
    assert dbt_env("postgresql://u:s%40cret@db/market")["DBT_PASSWORD"] == "s@cret"


@pytest.mark.parametrize(("url", "password"), [("postgresql://postgres@db:5433/market", PLACEHOLDER_PASSWORD),
                                              ("postgresql://trader:s3cret@db:5433/market", "s3cret")])
def test_cosmos_profile_mapping_with_and_without_a_password(monkeypatch, url, password):
    monkeypatch.setenv("AIRFLOW_CONN_NOPW_TEST", url)
    mapping = postgres_profile_mapping("nopw_test", schema="analytics", threads=2)
    assert mapping.can_claim_connection()
    assert mapping.env_vars["COSMOS_CONN_POSTGRES_PASSWORD"] == password  # stock mapping: CosmosValueError here
    profile = mapping.profile
    assert (profile["host"], profile["port"], profile["dbname"], profile["schema"]) == ("db", 5433, "market",
                                                                                         "analytics")
    assert profile["password"] == "{{ env_var('COSMOS_CONN_POSTGRES_PASSWORD') }}"


def test_the_stock_cosmos_mapping_refuses_a_passwordless_connection(monkeypatch):
    """Why postgres_profile_mapping exists: every Cosmos dbt task failed with this before."""
    from cosmos.exceptions import CosmosValueError
    from cosmos.profiles import PostgresUserPasswordProfileMapping

    monkeypatch.setenv("AIRFLOW_CONN_NOPW_TEST", "postgresql://postgres@db:5433/market")
    with pytest.raises(CosmosValueError, match="secret field password"):
        _ = PostgresUserPasswordProfileMapping(conn_id="nopw_test", profile_args={}).env_vars


def test_cosmos_profile_connects_with_dbt(monkeypatch, passwordless_db, tmp_path):
    """The profile Cosmos writes for a passwordless connection, used by a real ``dbt debug --connection``."""
    from cosmos.config import ProfileConfig

    monkeypatch.setenv("AIRFLOW_CONN_MARKET_DB_NOPW", passwordless_db)
    config = ProfileConfig(profile_name="ibkr_market", target_name="airflow",
                           profile_mapping=postgres_profile_mapping("market_db_nopw", schema="analytics"))
    with config.ensure_profile() as (profile_path, env_vars):
        out = subprocess.run(
            [str(Path(sys.executable).with_name("dbt")), "debug", "--connection", "--project-dir",
             str(DBT_PROJECT_DIR), "--profiles-dir", str(Path(profile_path).parent), "--target", "airflow",
             "--log-path", str(tmp_path)],
            env={**os.environ, **env_vars, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_USE_COLORS": "false"},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:]
    assert "Connection test: [OK connection ok]" in out.stdout


def test_make_dbt_runs_against_a_passwordless_url(passwordless_db, tmp_path):
    """``make dbt`` (python -m scripts.dbt) builds a model in the passwordless database."""
    import psycopg2

    env = {**os.environ, "MARKET_DB_URL": passwordless_db, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-m", "scripts.dbt", "run", "--select", "stg_ibkr__daily_bars",
         "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    with psycopg2.connect(passwordless_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('analytics_staging.stg_ibkr__daily_bars') IS NOT NULL")
        assert cur.fetchone()[0]


def test_great_expectations_runs_on_a_passwordless_url(passwordless_db):
    from include.quality.checks import Scope
    from include.quality.gx_run import Suite, run_suites, tcp_url
    from include.quality.raw_checks import raw_checks

    assert tcp_url(passwordless_db) == passwordless_db
    scope = Scope(("TSLA",), (date(2026, 3, 2), date(2026, 3, 3)))
    [outcome] = run_suites(passwordless_db, [Suite("raw_daily_bars", "raw.daily_bars", raw_checks(scope))])
    assert outcome.results and [r.error for r in outcome.results] == [None] * len(outcome.results)
