"""The local stack's ports and URLs (scripts/devstack.py, scripts/up.py): pure functions, no process started."""

from __future__ import annotations

import re

import pytest

from scripts import devstack, up
from scripts.devstack import StackPorts, airflow_env, stack_urls

CUSTOM = {"EMBEDDED_PG_PORT": "54399", "SIMULATOR_PORT": "5099", "AIRFLOW_PORT": "8099", "MLFLOW_PORT": "5599",
          "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": "8899", "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": "8898"}


@pytest.fixture(autouse=True)
def local_dir(tmp_path, monkeypatch):
    """Keep the stack's files (Airflow home, JWT secret) out of the repository's .local."""
    monkeypatch.setattr(devstack, "LOCAL", tmp_path / "local")
    return tmp_path / "local"


def test_defaults_are_the_documented_ports():
    ports = StackPorts.from_env({})
    assert (ports.embedded_pg, ports.simulator, ports.airflow, ports.mlflow) == (54320, 5055, 8080, 5500)
    assert (ports.worker_log_server, ports.trigger_log_server) == (8793, 8794)
    assert ports.explicit({}) == set()


def test_every_port_follows_its_variable():
    ports = StackPorts.from_env(CUSTOM)
    assert ports == StackPorts(54399, 5099, 8099, 5599, 8899, 8898)
    assert ports.explicit(CUSTOM) == set(StackPorts.ENV)
    assert ports.airflow_url == "http://127.0.0.1:8099"
    assert ports.mlflow_url == "http://127.0.0.1:5599"
    assert ports.simulator_url == "http://127.0.0.1:5099/v1/api"


@pytest.mark.parametrize("bad", ["http", "0", "70000", "-1"])
def test_a_malformed_port_names_its_variable(bad):
    with pytest.raises(ValueError, match="MLFLOW_PORT"):
        StackPorts.from_env({"MLFLOW_PORT": bad})


def test_airflow_env_on_non_default_ports(local_dir):
    ports = StackPorts.from_env(CUSTOM)
    env = airflow_env("postgresql://postgres@127.0.0.1:5432/m", ports.simulator_url, None, ports, environ={})
    assert env["AIRFLOW__API__PORT"] == "8099"
    # Without this every task's supervisor calls :8080 and dies after "Pre Execute".
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8099/execution/"
    assert env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] == "8899"
    assert env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] == "8898"
    assert env["MLFLOW_UI_URL"] == "http://127.0.0.1:5599"
    assert env["AIRFLOW_HOME"] == str(local_dir / "airflow")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{local_dir / 'airflow' / 'airflow.db'}"
    assert env["MLFLOW_TRACKING_URI"] == f"sqlite:///{(local_dir / 'mlflow' / 'mlflow.db').resolve()}"
    assert len(env["AIRFLOW__API_AUTH__JWT_SECRET"]) == 64


def test_airflow_env_keeps_what_the_caller_configured():
    environ = {"MLFLOW_UI_URL": "https://mlflow.example", "MLFLOW_TRACKING_URI": "http://mlflow:5000",
               "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://a@h/airflow"}
    env = airflow_env("postgresql://u@h/m", "http://gw/v1/api", "postgresql://x@y/z", StackPorts(), environ=environ)
    assert env["MLFLOW_UI_URL"] == "https://mlflow.example"
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg2://a@h/airflow"


def test_the_demo_summary_links_to_mlflow_on_its_port():
    from include.tracking.links import run_url

    ports = StackPorts.from_env(CUSTOM)
    env = airflow_env("postgresql://u@h/m", ports.simulator_url, None, ports, environ={})
    assert run_url("abc123", environ=env) == "http://127.0.0.1:5599/#/runs/abc123"


def test_stack_urls_embedded_and_configured():
    ports = StackPorts.from_env(CUSTOM)
    market, gateway, metadata = stack_urls(ports, {})
    assert market == "postgresql://postgres:postgres@127.0.0.1:54399/market"
    assert metadata == "postgresql://postgres:postgres@127.0.0.1:54399/airflow"
    assert gateway == "http://127.0.0.1:5099/v1/api"
    configured = {"MARKET_DB_URL": "postgresql://postgres@db:5432/m", "IBKR_GATEWAY_URL": "https://gw:5000/v1/api"}
    assert stack_urls(ports, configured) == ("postgresql://postgres@db:5432/m", "https://gw:5000/v1/api", None)


def test_make_up_refuses_busy_ui_ports_and_moves_busy_default_log_ports():
    ports = StackPorts(airflow=8099, mlflow=5599)
    with pytest.raises(RuntimeError, match="AIRFLOW_PORT"):
        up.resolve_ports(ports, set(), in_use=lambda port: port == 8099)
    with pytest.raises(RuntimeError, match="MLFLOW_PORT"):
        up.resolve_ports(ports, set(), in_use=lambda port: port == 5599)
    picks = iter([41001, 41002])
    moved, notes = up.resolve_ports(ports, set(), in_use=lambda port: port in (8793, 8794), pick=picks.__next__)
    assert (moved.worker_log_server, moved.trigger_log_server) == (41001, 41002)
    assert len(notes) == 2 and "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=41001" in notes[0]
    kept, notes = up.resolve_ports(ports, {"worker_log_server"}, in_use=lambda port: port == 8793)
    assert kept.worker_log_server == 8793 and notes == []  # set by its variable: never moved
    free, notes = up.resolve_ports(ports, set(), in_use=lambda port: False)
    assert free == ports and notes == []


def test_banner_prints_the_real_urls_and_the_login_screenshots_reads():
    from scripts.screenshots import _LOGIN_LINE

    text = up.banner(StackPorts.from_env(CUSTOM), "admin / s3cret")
    assert "http://127.0.0.1:8099/api/v2" in text and "http://127.0.0.1:5599" in text
    assert ":8080" not in text and ":5500" not in text
    assert "scheduler :8899, triggerer :8898" in text
    match = _LOGIN_LINE.search(text)
    assert match and (match["url"], match["user"], match["password"]) == ("http://127.0.0.1:8099", "admin", "s3cret")
    assert re.search(r"Ctrl-C", text)


def test_make_up_checks_trading_clock_and_pins_the_simulator(monkeypatch):
    assert up.trading_clock({}) is None and up.trading_clock({"TRADING_CLOCK": " "}) is None
    assert up.trading_clock({"TRADING_CLOCK": "2026-12-04T10:30:00-05:00"}) == "2026-12-04T15:30:00+00:00"
    for bad in ("2026-12-04T15:30:00", "friday"):  # no zone, not ISO: make up refuses to start, naming the variable
        with pytest.raises(ValueError, match="TRADING_CLOCK"):
            up.trading_clock({"TRADING_CLOCK": bad})
    sent = []

    class Response:
        def raise_for_status(self) -> None:
            pass

    monkeypatch.setattr(up.httpx, "post", lambda url, json, timeout: sent.append((url, json)) or Response())
    up.pin_simulator_clock("http://127.0.0.1:5099/v1/api", "2026-12-04T15:30:00+00:00")
    assert sent == [("http://127.0.0.1:5099/sim/admin/clock", {"now": "2026-12-04T15:30:00+00:00", "running": True})]


def test_make_up_names_a_failed_preparation_step_and_stops_the_stack(monkeypatch, capsys):
    """A broken dbt project (or migration) at start-up: one line naming the step, the stack it started stopped,
    exit 1, and no traceback of ours."""
    import subprocess

    stopped: list[bool] = []

    class Stack:
        env: dict[str, str] = {"AIRFLOW_HOME": "/nonexistent"}
        simulator = None

        def describe(self) -> list[str]:
            return ["stack"]

        def stop(self) -> None:
            stopped.append(True)

    def run(command, **kwargs):
        if "ensure_manifest" in " ".join(command):
            raise subprocess.CalledProcessError(2, command)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(up.signal, "signal", lambda *a: None)  # main() would leave SIGINT/SIGTERM ignored here
    monkeypatch.setattr(up, "start_stack", lambda ports: Stack())
    monkeypatch.setattr(up, "resolve_ports", lambda configured, explicit: (configured, []))
    monkeypatch.setattr(up, "trading_clock", lambda: None)
    monkeypatch.setattr(up.subprocess, "run", run)
    monkeypatch.setattr(up, "start_mlflow", lambda *a: pytest.fail("MLflow started after a failed step"))
    assert up.main() == 1
    err = capsys.readouterr().err
    assert "make up: dbt parse (the manifest the dbt DAGs render from) failed (exit status 2" in err
    assert "Traceback" not in err and stopped == [True]
