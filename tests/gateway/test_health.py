"""The gateway check against the simulator, its record in ops.gateway_health (real PostgreSQL), the alerts on a
health flip (a local webhook receiver) and the trading gate's decision."""

from __future__ import annotations

from datetime import timedelta

import httpx
import psycopg2
import pytest

from include.gateway import gate, store
from include.gateway.health import check_gateway
from include.ibkr.client import IBKRClient
from tests.gateway.conftest import set_session, sim_state


@pytest.fixture
def env(monkeypatch, clean_db, simulator):
    monkeypatch.setenv("MARKET_DB_URL", clean_db)  # send_alert records in ops.alerts
    monkeypatch.delenv("AIRFLOW_CONN_ALERTS_WEBHOOK", raising=False)
    return clean_db


def _client(sim):
    return IBKRClient(sim.base_url, retries=1, backoff_initial=0.05)


def _check(sim, **kw):
    with _client(sim) as client:
        return check_gateway(client, reauth_wait_s=0.05, **kw)


def _rows(
    dsn,
    sql="SELECT source, state, healthy, authenticated, connected, competing, reauth_attempted,"
    " reauth_outcome, alert_event FROM ops.gateway_health ORDER BY check_id",
):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_healthy_tickle_is_recorded_without_an_alert(env, simulator, webhook):
    tickles = sim_state(simulator)["stats"]["by_path"].get("/tickle", 0)
    health = _check(simulator)
    assert health.healthy and health.server_name and health.latency_ms is not None and health.latency_ms > 0
    assert not health.reauth_attempted
    assert sim_state(simulator)["stats"]["by_path"]["/tickle"] == tickles + 1
    check_id, event = store.record_and_alert(env, health, source="keepalive")
    assert event is None and webhook == []
    ((cid, server, latency, checked_at),) = _rows(
        env, "SELECT check_id, server_name, latency_ms, checked_at FROM ops.gateway_health"
    )
    assert cid == check_id and server == health.server_name and latency == pytest.approx(health.latency_ms)
    assert checked_at == health.checked_at
    assert _rows(env)[0] == ("keepalive", "healthy", True, True, True, False, False, None, None)


def test_competing_session_is_recorded_and_alerted_once_then_recovery(env, simulator, webhook):
    set_session(simulator, state="authenticated", competing=True)
    for _ in range(3):  # three keepalive minutes of the same outage
        health = _check(simulator)
        assert health.state == "competing" and not health.healthy and not health.reauth_attempted
        store.record_and_alert(env, health, source="keepalive", dag_id="ibkr_gateway_keepalive", run_id="r1")
    assert sim_state(simulator)["competing"] is True  # never taken over: that would log the trader out elsewhere
    assert [r[-1] for r in _rows(env)] == ["gateway_unhealthy", None, None]
    assert [(a["event"], a["severity"]) for a in webhook] == [("gateway_unhealthy", "critical")]
    assert "competing" in webhook[0]["summary"] and webhook[0]["dag_id"] == "ibkr_gateway_keepalive"

    set_session(simulator, competing=False)
    health = _check(simulator)
    assert store.record_and_alert(env, health, source="keepalive")[1] == "gateway_recovered"
    assert [a["event"] for a in webhook] == ["gateway_unhealthy", "gateway_recovered"]
    from include.alerts.store import recent_alerts

    assert [a["event"] for a in recent_alerts(env)] == ["gateway_recovered", "gateway_unhealthy"]


def test_lost_brokerage_session_is_reauthenticated_and_recorded(env, simulator, webhook):
    set_session(simulator, state="sso_only")
    health = _check(simulator)
    assert health.initial_state == "no_bridge" and health.reauth_attempted and health.reauth_outcome == "recovered"
    assert health.healthy and sim_state(simulator)["session"] == "authenticated"
    store.record_and_alert(env, health, source="keepalive")
    assert _rows(env) == [("keepalive", "healthy", True, True, True, False, True, "recovered", None)]
    assert webhook == []  # recovered within the check: nothing for a human to do


def test_keepalive_that_recovers_the_session_warms_the_live_orders_feed(env, simulator, monkeypatch):
    """The new session's live-orders pre-flight is made by the keepalive: a trading run's first call is complete."""
    from include.gateway.tasks import keepalive

    monkeypatch.setenv("IBKR_GATEWAY_URL", simulator.base_url)
    set_session(simulator, state="sso_only")
    result = keepalive({"dag": type("D", (), {"dag_id": "ibkr_gateway_keepalive"})(), "run_id": "r1"},
                       reauth_wait_s=0.05)
    assert result["reauth_outcome"] == "recovered"
    calls = []
    with _client(simulator) as client:
        client._request = lambda *a, _send=client._request, **kw: calls.append(a[1]) or _send(*a, **kw)
        assert client.live_orders(preflight_wait_s=5) == []
    assert calls == ["/iserver/account/orders"]  # no pre-flight, no 5 s wait for a second call


def test_logged_out_gateway_fails_reauthentication_and_alerts(env, simulator, webhook):
    set_session(simulator, state="logged_out")
    health = _check(simulator)
    assert health.state == "unauthenticated" and health.reauth_attempted and health.reauth_outcome == "failed"
    assert "log in" in health.reason
    store.record_and_alert(env, health, source="keepalive")
    assert _rows(env) == [
        ("keepalive", "unauthenticated", False, False, False, False, True, "failed", "gateway_unhealthy")
    ]
    assert [a["event"] for a in webhook] == ["gateway_unhealthy"]


def test_unreachable_gateway_is_unhealthy_without_reauth():
    with IBKRClient("http://127.0.0.1:9/v1/api", retries=0) as client:
        health = check_gateway(client)
    assert health.state == "unreachable" and not health.reachable and not health.reauth_attempted
    assert gate.live_decision(health).wait is True  # the sensor keeps waiting; its timeout fails the run


def _tickles(sim):
    return sim_state(sim)["stats"]["by_path"].get("/tickle", 0)


def test_gate_refuses_on_a_fresh_unhealthy_record_without_calling_the_gateway(env, simulator):
    set_session(simulator, state="authenticated", competing=True)
    store.record_and_alert(env, _check(simulator), source="keepalive")
    set_session(simulator, competing=False)  # the gateway is fine again, but the keepalive has not seen it yet
    before = _tickles(simulator)
    decision = gate.evaluate(lambda: _client(simulator), env, reauth_wait_s=0.05)
    assert not decision.allow and not decision.wait and decision.basis == "keepalive"
    assert decision.state == "competing" and "competing=True" in decision.reason
    assert _tickles(simulator) == before


def test_gate_checks_live_without_a_record_or_with_a_stale_one(env, simulator):
    decision = gate.evaluate(lambda: _client(simulator), env, dag_id="ibkr_trading_strategy", run_id="r1")
    assert decision.allow and decision.basis == "live"  # no keepalive record (e.g. make demo): a live check
    assert _rows(env, "SELECT source, healthy, dag_id FROM ops.gateway_health") == [
        ("trading_gate", True, "ibkr_trading_strategy")
    ]

    with psycopg2.connect(env) as conn, conn.cursor() as cur:  # an unhealthy record, but 10 minutes old
        cur.execute(
            "UPDATE ops.gateway_health SET healthy = false, state = 'competing', competing = true,"
            " checked_at = now() - interval '10 minutes'"
        )
    set_session(simulator, state="authenticated", competing=True)
    decision = gate.evaluate(lambda: _client(simulator), env, max_age=timedelta(minutes=3))
    assert not decision.allow and decision.basis == "live" and decision.state == "competing"
    set_session(simulator, competing=False)
    with psycopg2.connect(env) as conn, conn.cursor() as cur:
        cur.execute("UPDATE ops.gateway_health SET checked_at = now() - interval '10 minutes'")
    assert gate.evaluate(lambda: _client(simulator), env).allow
    assert httpx.get(f"{simulator.admin_url}/state").json()["competing"] is False


def test_gate_sensor_keeps_waiting_while_the_gateway_is_unreachable(monkeypatch):
    from include.gateway.sensors import GatewayGateSensor

    monkeypatch.setenv("IBKR_GATEWAY_URL", "http://127.0.0.1:9/v1/api")
    monkeypatch.delenv("MARKET_DB_URL", raising=False)
    sensor = GatewayGateSensor(task_id="ibkr_auth")
    assert sensor.mode == "reschedule" and sensor.poke({}) is False  # an error after its timeout, never a skip
