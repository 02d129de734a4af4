"""Pacing (§9, checklist 7), fault injection and the admin reset."""

from __future__ import annotations

import json
import time

from tests.sim.sim_support import ADMIN, API, ClientFactory

TOO_MANY = {"error": "Too many requests"}


def test_global_rate_limit(make_client: ClientFactory) -> None:
    c = make_client(rate_limits=True, global_rate_per_sec=10)
    codes = [c.get(f"{API}/trsrv/stocks?symbols=AAPL").status_code for _ in range(12)]
    assert codes[:10] == [200] * 10 and codes[10:] == [429, 429]
    r = c.get(f"{API}/trsrv/stocks?symbols=AAPL")
    assert r.json() == TOO_MANY
    stats = c.get(f"{ADMIN}/stats").json()
    assert stats["http_429"] == 3 and stats["http_429_by_path"] == {"/trsrv/stocks": 3}
    c.post(f"{ADMIN}/config", json={"rate_limits": False})
    assert c.get(f"{API}/trsrv/stocks?symbols=AAPL").status_code == 200


def test_per_endpoint_limits(make_client: ClientFactory) -> None:
    c = make_client(rate_limits=True, primed=True)
    assert c.post(f"{API}/tickle").status_code == 200
    r = c.post(f"{API}/tickle")  # 1 req/s
    assert (r.status_code, r.json()) == (429, TOO_MANY)
    assert c.get(f"{API}/portfolio/accounts").status_code == 200
    assert c.get(f"{API}/portfolio/accounts").status_code == 429  # 1 req/5 s
    assert c.get(f"{API}/sso/validate").status_code == 200
    assert c.get(f"{API}/sso/validate").status_code == 429  # 1 req/min
    refused = c.get(f"{ADMIN}/stats").json()["http_429_by_path"]
    assert refused == {"/tickle": 1, "/portfolio/accounts": 1, "/sso/validate": 1}


def test_penalty_box(make_client: ClientFactory) -> None:
    c = make_client(rate_limits=True, penalty_box_s=60)
    c.post(f"{API}/tickle")
    c.post(f"{API}/tickle")
    assert c.get(f"{API}/trsrv/stocks?symbols=AAPL").status_code == 429  # everything refused for a while


def test_fault_status_with_body_and_times(make_client: ClientFactory) -> None:
    c = make_client(primed=True)
    fault = c.post(
        f"{ADMIN}/faults",
        json={
            "path": "^/iserver/accounts$",
            "status": 503,
            "body": {"error": "Service Unavailable"},
            "times": 2,
        },
    ).json()
    assert fault["id"] >= 1
    for _ in range(2):
        r = c.get(f"{API}/iserver/accounts")
        assert (r.status_code, r.json()) == (503, {"error": "Service Unavailable"})
    assert c.get(f"{API}/iserver/accounts").status_code == 200
    assert c.get(f"{ADMIN}/state").json()["faults"] == []
    assert c.get(f"{ADMIN}/stats").json()["faults_applied"] == 2


def test_fault_401_is_empty_and_method_filter(make_client: ClientFactory) -> None:
    c = make_client()
    c.post(f"{ADMIN}/faults", json={"path": "tickle", "method": "POST", "status": 401, "times": -1})
    assert c.get(f"{API}/tickle").status_code == 200  # GET not matched
    for _ in range(3):
        r = c.post(f"{API}/tickle")
        assert (r.status_code, r.content) == (401, b"")
    c.delete(f"{ADMIN}/faults")
    assert c.post(f"{API}/tickle").status_code == 200


def test_fault_latency_then_normal(make_client: ClientFactory) -> None:
    c = make_client()
    c.post(f"{ADMIN}/faults", json={"path": "/trsrv/stocks", "latency_ms": 150})
    started = time.perf_counter()
    r = c.get(f"{API}/trsrv/stocks?symbols=AAPL")
    assert time.perf_counter() - started >= 0.15 and r.status_code == 200 and "AAPL" in r.json()


def test_fault_malformed_body(make_client: ClientFactory) -> None:
    c = make_client(primed=True)
    c.post(f"{ADMIN}/faults", json={"path": "marketdata/history", "malformed": True})
    r = c.get(f"{API}/iserver/marketdata/history?conid=265598&period=5d&bar=1d")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    try:
        json.loads(r.text)
    except ValueError:
        pass
    else:
        raise AssertionError("body should not be valid JSON")
    assert "data" in c.get(f"{API}/iserver/marketdata/history?conid=265598&period=5d&bar=1d").json()


def test_fault_validation(make_client: ClientFactory) -> None:
    c = make_client()
    assert c.post(f"{ADMIN}/faults", json={"path": "("}).status_code == 400
    assert c.post(f"{ADMIN}/faults", json={"path": "x"}).status_code == 400


def test_admin_reset(make_client: ClientFactory) -> None:
    c = make_client(primed=True, questions=())
    c.post(
        f"{API}/iserver/account/DU1234567/orders",
        json=[{"conid": 265598, "orderType": "MKT", "side": "BUY", "tif": "DAY", "quantity": 1}],
    )
    c.post(f"{ADMIN}/faults", json={"path": "x", "status": 500})
    c.post(f"{ADMIN}/session", json={"state": "logged_out"})
    state = c.post(f"{ADMIN}/reset").json()
    assert (state["session"], state["primed"], state["faults"]) == ("authenticated", True, [])
    assert state["stats"]["requests"] == 0
    assert c.get(f"{ADMIN}/orders").json() == {"orders": [], "pending": []}


def test_ip_allow_list(make_client: ClientFactory) -> None:
    c = make_client(allowed_clients=("127.0.0.1", "10.*"))  # TestClient connects as "testclient"
    r = c.post(f"{API}/tickle")
    assert (r.status_code, r.text) == (404, "Access Denied")
    assert make_client(allowed_clients=("test*",)).post(f"{API}/tickle").status_code == 200
