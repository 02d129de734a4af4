"""Session state machine, priming and their exact status codes and bodies (§2, §3, checklist 2-3)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.sim.sim_support import ADMIN, API, IN_SESSION, ClientFactory


def test_logged_out_gives_401_with_empty_body_everywhere(make_client: ClientFactory) -> None:
    c = make_client(session_state="logged_out")
    for method, path in [
        ("POST", "/tickle"),
        ("POST", "/iserver/auth/status"),
        ("GET", "/portfolio/accounts"),
        ("GET", "/iserver/accounts"),
        ("GET", "/sso/validate"),
        ("POST", "/iserver/reauthenticate"),
    ]:
        r = c.request(method, API + path)
        assert r.status_code == 401, path
        assert r.content == b"", path


def test_sso_only_blocks_iserver_with_no_bridge(make_client: ClientFactory) -> None:
    c = make_client(session_state="sso_only")
    r = c.get(f"{API}/iserver/accounts")
    assert r.status_code == 400
    assert r.json() == {"error": "Bad Request: no bridge", "statusCode": 400}
    status = c.post(f"{API}/iserver/auth/status")
    assert status.status_code == 200
    body = status.json()
    assert set(body) == {"authenticated", "competing", "connected", "MAC"}
    assert body["authenticated"] is False and body["connected"] is False and body["competing"] is False
    assert c.get(f"{API}/portfolio/accounts").status_code == 200
    assert c.get(f"{API}/trsrv/stocks?symbols=AAPL").status_code == 200
    tickle = c.post(f"{API}/tickle").json()
    assert tickle["iserver"]["authStatus"]["authenticated"] is False


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_reauthenticate_from_sso_only(make_client: ClientFactory, method: str) -> None:
    c = make_client(session_state="sso_only")
    r = c.request(method, f"{API}/iserver/reauthenticate")
    assert r.status_code == 200
    assert r.json() == {"message": "triggered"}
    assert c.post(f"{API}/iserver/auth/status").json()["authenticated"] is True


def test_ssodh_init_opens_brokerage_session(make_client: ClientFactory) -> None:
    c = make_client(session_state="sso_only", competing=True)
    body = c.post(f"{API}/iserver/auth/ssodh/init", json={"publish": True, "compete": True}).json()
    assert body["authenticated"] is True and body["connected"] is True and body["competing"] is False
    assert body["serverInfo"]["serverName"] == "IBKR-SIM"


def test_tickle_shape_and_competing_flag(make_client: ClientFactory) -> None:
    c = make_client(competing=True)
    body = c.post(f"{API}/tickle").json()
    assert set(body) == {"session", "ssoExpires", "collission", "userId", "hmds", "iserver"}
    assert body["collission"] is True  # sic (§2.2)
    assert isinstance(body["ssoExpires"], int) and 0 < body["ssoExpires"] <= 600_000
    assert body["hmds"] == {"error": "no bridge"}
    auth = body["iserver"]["authStatus"]
    assert auth["authenticated"] is True and auth["competing"] is True
    assert c.post(f"{API}/iserver/auth/status").json()["competing"] is True


def test_logout_then_401(make_client: ClientFactory) -> None:
    c = make_client()
    assert c.post(f"{API}/logout").json() == {"status": True}
    assert c.post(f"{API}/tickle").status_code == 401
    assert c.post(f"{API}/iserver/reauthenticate").status_code == 401


def test_sso_validate(make_client: ClientFactory) -> None:
    body = make_client().get(f"{API}/sso/validate").json()
    assert body["RESULT"] is True and body["loginType"] == 2
    assert isinstance(body["USER_ID"], int) and isinstance(body["AUTH_TIME"], int)


def test_priming_required_for_iserver_data(make_client: ClientFactory) -> None:
    c = make_client()
    not_primed = {"error": "Please query /accounts first"}
    for path in [
        "/iserver/marketdata/snapshot?conids=265598&fields=31",
        "/iserver/marketdata/history?conid=265598&period=5d&bar=1d",
        "/iserver/account/orders",
        "/iserver/account/trades",
        "/iserver/account/order/status/1",
    ]:
        r = c.get(API + path)
        assert (r.status_code, r.json()) == (500, not_primed), path
    r = c.post(f"{API}/iserver/account/DU1234567/orders", json={"orders": []})
    assert r.status_code == 500
    # Exempt: auth, contract lookup, and /iserver/accounts itself.
    assert c.get(f"{API}/iserver/secdef/search?symbol=AAPL").status_code == 200
    assert c.get(f"{API}/iserver/contract/265598/info").status_code == 200
    assert c.post(f"{API}/iserver/auth/status").status_code == 200
    assert c.get(f"{API}/iserver/accounts").status_code == 200
    assert c.get(f"{API}/iserver/marketdata/snapshot?conids=265598&fields=31").status_code == 200
    # A reauthentication starts a new brokerage session: priming is lost.
    c.post(f"{API}/iserver/reauthenticate")
    assert c.get(f"{API}/iserver/account/orders").status_code == 500
    assert c.get(ADMIN + "/state").json()["primed"] is False


def test_primed_config_and_portal_alias(make_client: ClientFactory) -> None:
    c = make_client(primed=True)
    assert c.get(f"{API}/iserver/account/orders").status_code == 200
    assert c.post("/v1/portal/iserver/reauthenticate?force=true").json() == {"message": "triggered"}
    assert c.get("/v1/portal/sso/validate").json()["RESULT"] is True


def test_idle_timeout_without_tickle_drops_to_sso_only(make_client: ClientFactory) -> None:
    c = make_client(primed=True)
    c.post(ADMIN + "/clock", json={"now": (IN_SESSION + timedelta(seconds=300)).isoformat()})
    c.post(f"{API}/tickle")  # tickled in time: still authenticated
    c.post(ADMIN + "/clock", json={"now": (IN_SESSION + timedelta(seconds=600)).isoformat()})
    assert c.post(f"{API}/iserver/auth/status").json()["authenticated"] is True
    c.post(ADMIN + "/clock", json={"now": (IN_SESSION + timedelta(seconds=700)).isoformat()})
    assert c.post(f"{API}/iserver/auth/status").json()["authenticated"] is False
    assert c.get(f"{API}/iserver/account/orders").json() == {
        "error": "Bad Request: no bridge",
        "statusCode": 400,
    }
    state = c.get(ADMIN + "/state").json()
    assert (state["session"], state["primed"]) == ("sso_only", False)


def test_nightly_reset_clears_priming(make_client: ClientFactory) -> None:
    before = IN_SESSION.replace(hour=5, minute=58)  # 00:58 New York (EST = UTC-5)
    c = make_client(now=before, primed=True)
    assert c.get(f"{API}/iserver/account/orders").status_code == 200
    c.post(ADMIN + "/clock", json={"now": before.replace(hour=6, minute=2).isoformat()})
    r = c.get(f"{API}/iserver/account/orders")
    assert (r.status_code, r.json()) == (500, {"error": "Please query /accounts first"})
    assert c.post(f"{API}/iserver/auth/status").json()["authenticated"] is True


def test_admin_session_switch(make_client: ClientFactory) -> None:
    c = make_client()
    state = c.post(ADMIN + "/session", json={"state": "sso_only", "competing": True}).json()
    assert (state["session"], state["competing"]) == ("sso_only", True)
    state = c.post(ADMIN + "/session", json={"state": "authenticated", "primed": True}).json()
    assert (state["session"], state["primed"]) == ("authenticated", True)
    assert c.get(f"{API}/iserver/account/orders").status_code == 200
