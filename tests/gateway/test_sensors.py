"""Sensors against the simulator and the exchange calendar (poke logic; scheduling modes)."""

from datetime import UTC, datetime

import httpx
import pytest

from include.gateway.sensors import IBKRAuthSensor
from include.marketdata.sensors import MarketOpenSensor


@pytest.fixture
def gateway(monkeypatch, simulator):
    monkeypatch.setenv("IBKR_GATEWAY_URL", simulator.base_url)
    return simulator


def _session(sim, **body):
    httpx.post(f"{sim.admin_url}/session", json=body).raise_for_status()


def test_auth_sensor_reauthenticates_a_bridgeless_session(gateway):
    _session(gateway, state="sso_only")
    sensor = IBKRAuthSensor(task_id="wait_for_ibkr")
    assert sensor.mode == "reschedule"  # no worker slot held while a human logs in
    assert sensor.poke({}) is True
    assert httpx.get(f"{gateway.admin_url}/state").json()["session"] == "authenticated"


def test_auth_sensor_waits_while_logged_out_and_on_competing_sessions(gateway):
    sensor = IBKRAuthSensor(task_id="wait_for_ibkr")
    _session(gateway, state="logged_out")
    assert sensor.poke({}) is False
    _session(gateway, state="authenticated", competing=True)
    assert sensor.poke({}) is False
    assert httpx.get(f"{gateway.admin_url}/state").json()["competing"] is True  # not taken over


def test_auth_sensor_waits_when_the_gateway_is_down(monkeypatch):
    monkeypatch.setenv("IBKR_GATEWAY_URL", "http://127.0.0.1:9/v1/api")
    assert IBKRAuthSensor(task_id="wait_for_ibkr").poke({}) is False


@pytest.mark.parametrize(
    ("now", "is_open"),
    [(datetime(2024, 11, 29, 17, 0, tzinfo=UTC), True),     # day after Thanksgiving, before 13:00 ET
     (datetime(2024, 11, 29, 18, 30, tzinfo=UTC), False),   # after the early close
     (datetime(2024, 7, 4, 15, 0, tzinfo=UTC), False),      # holiday on a weekday
     (datetime(2024, 7, 5, 15, 0, tzinfo=UTC), True)],
)
def test_market_open_sensor_follows_the_exchange_calendar(monkeypatch, now, is_open):
    monkeypatch.setenv("TRADING_CLOCK", now.isoformat())  # the trading clock the whole order path reads
    assert MarketOpenSensor(task_id="market_open").poke({}) is is_open


def test_market_open_sensor_override_is_explicit(monkeypatch):
    monkeypatch.setenv("TRADING_CLOCK", datetime(2024, 7, 4, 15, tzinfo=UTC).isoformat())
    assert MarketOpenSensor(task_id="m", ignore_market_hours="true").poke({}) is True
    assert MarketOpenSensor(task_id="m", ignore_market_hours="false").poke({}) is False


def test_auth_sensor_takes_the_guides_parameters(gateway):
    sensor = IBKRAuthSensor(task_id="check_ibkr_auth", attempt_reauth=False, poke_interval=5, timeout=60)
    assert (sensor.poke_interval, sensor.timeout, sensor.attempt_reauth, sensor.try_reauth) == (5, 60, False, False)
    _session(gateway, state="sso_only")
    assert sensor.poke({}) is False  # no reauthentication asked for
    assert httpx.get(f"{gateway.admin_url}/state").json()["session"] != "authenticated"
    assert IBKRAuthSensor(task_id="a", attempt_reauth=True).poke({}) is True
    assert IBKRAuthSensor(task_id="b").attempt_reauth is True  # the default (and try_reauth) unchanged
