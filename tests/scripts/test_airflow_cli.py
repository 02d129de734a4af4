"""``make airflow``'s wrapper (scripts/airflow_cli.py): the environment it gives the Airflow CLI, and one real run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import airflow_cli, devstack

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def local_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(devstack, "LOCAL", tmp_path / "local")
    return tmp_path / "local"


def test_embedded_stack_env(local_dir):
    environ = {"PATH": "/usr/bin", "EMBEDDED_PG_PORT": "54398", "AIRFLOW_PORT": "8098", "SIMULATOR_PORT": "5098"}
    env = airflow_cli.cli_env(environ)
    assert airflow_cli.needs_embedded_postgres(environ)
    assert env["AIRFLOW_HOME"] == str(local_dir / "airflow")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg2://postgres:postgres@127.0.0.1:54398/airflow"
    assert env["AIRFLOW_CONN_MARKET_DB"] == "postgresql://postgres:postgres@127.0.0.1:54398/market"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8098/execution/"
    assert env["IBKR_GATEWAY_URL"] == "http://127.0.0.1:5098/v1/api"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(REPO / "dags")
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)  # airflow from this venv


def test_configured_market_db_uses_the_local_sqlite_metadata_db(local_dir):
    environ = {"MARKET_DB_URL": "postgresql://postgres@127.0.0.1:5432/market", "KEEP": "me"}
    env = airflow_cli.cli_env(environ)
    assert not airflow_cli.needs_embedded_postgres(environ)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{local_dir / 'airflow' / 'airflow.db'}"
    assert env["AIRFLOW_CONN_MARKET_DB"] == environ["MARKET_DB_URL"]
    assert env["KEEP"] == "me"  # the caller's environment passes through
    assert not airflow_cli.needs_embedded_postgres({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:////x.db"})


def test_the_cli_runs_with_the_stack_settings_and_leaves_no_files_behind(tmp_path):
    """A real ``airflow`` invocation: it reads the stack's config and writes airflow.cfg only into its home."""
    local, cwd = tmp_path / "local", tmp_path / "cwd"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_TESTS_"))}
    env.update({"LOCAL_STACK_DIR": str(local), "AIRFLOW_PORT": "8097",
                "MARKET_DB_URL": "postgresql://postgres@127.0.0.1:5432/unused", "PYTHONPATH": str(REPO)})
    repo_files = {p for p in ("airflow.cfg", "airflow.db") if (REPO / p).exists()}
    for key, expected in (("core execution_api_server_url", "http://127.0.0.1:8097/execution/"),
                          ("database sql_alchemy_conn", f"sqlite:///{local / 'airflow' / 'airflow.db'}")):
        out = subprocess.run([sys.executable, "-m", "scripts.airflow_cli", "config", "get-value", *key.split()],
                             cwd=cwd, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.strip().splitlines()[-1] == expected
    assert (local / "airflow" / "airflow.cfg").exists()
    assert list(cwd.iterdir()) == []
    assert {p for p in ("airflow.cfg", "airflow.db") if (REPO / p).exists()} == repo_files


def test_json_output_is_json_without_graphviz(tmp_path):
    """Airflow warns on stdout that graphviz is missing for every ``dags`` command: ``-o json`` must stay JSON."""
    import json

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_TESTS_"))}
    env.update({"LOCAL_STACK_DIR": str(tmp_path / "local"), "MARKET_DB_URL": "postgresql://postgres@127.0.0.1:5432/x",
                "PYTHONPATH": str(REPO)})

    def cli(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "scripts.airflow_cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-2000:]
        return done

    cli("db", "migrate")
    assert json.loads(cli("dags", "list", "-o", "json").stdout) == []  # no DAG parsed into this metadata DB yet
    assert airflow_cli.with_quiet_graphviz({}, ["dags", "show", "x"]) == {}  # where graphviz is needed: warned
    assert airflow_cli.with_quiet_graphviz({"PYTHONWARNINGS": "error"}, ["dags", "list"])["PYTHONWARNINGS"] == (
        "error," + airflow_cli.GRAPHVIZ_WARNING)
