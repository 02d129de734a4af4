"""Client <-> simulator contract: the real httpx client against the gateway simulator over HTTP(S),
including every fault the simulator can inject. Pairs with the parsing tests on real payloads."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from include.ibkr import errors as E
from include.ibkr.client import IBKRClient
from include.ibkr.models import OrderRequest
from include.marketdata.calendar import MarketCalendar


def admin(sim, path: str, body: dict | None = None) -> dict:
    resp = httpx.post(f"{sim.admin_url}{path}", json=body or {}, timeout=5)
    resp.raise_for_status()
    return resp.json()


def fault(sim, **spec) -> None:
    admin(sim, "/faults", spec)


@pytest.fixture
def client(simulator):
    with IBKRClient(simulator.base_url, rate_per_sec=None, backoff_initial=0.01, backoff_max=0.05,
                    endpoint_pacing=False) as c:
        yield c


# ---------------------------------------------------------------- session states and priming
def test_ensure_session_primes_and_reports_the_paper_account(client):
    status = client.ensure_session()
    assert status.healthy and client.primed
    assert client.account_id.startswith("DU")
    assert client.server_name == "IBKR-SIM"


def test_logged_out_gateway_is_not_authenticated(client, simulator):
    admin(simulator, "/session", {"state": "logged_out"})
    with pytest.raises(E.NotAuthenticatedError, match="log in at the gateway"):
        client.ensure_session()


def test_no_bridge_is_reauthenticated(client, simulator):
    admin(simulator, "/session", {"state": "sso_only"})
    with pytest.raises(E.NoBridgeError):
        client.accounts()  # /iserver/* without a brokerage session: 400 "no bridge"
    status = client.ensure_session(reauth_wait_s=0)
    assert status.healthy


def test_competing_session_is_refused_not_taken_over(client, simulator):
    admin(simulator, "/session", {"competing": True})
    with pytest.raises(E.CompetingSessionError):
        client.ensure_session()
    assert admin(simulator, "/session", {})["competing"] is True  # we did not kick the other login out


def test_unprimed_session_is_primed_automatically(client, simulator):
    admin(simulator, "/session", {"primed": False})
    contract = client.resolve_contract("AAPL")
    bars = client.daily_bars(contract, date(2024, 1, 2), date(2024, 1, 31))  # 500 first, then primes
    assert len(bars) == 21 and client.primed


def test_a_session_check_without_priming_sends_one_request_less_and_history_still_loads(client, simulator):
    """fetch_bars checks the session with ``prime=False``: no /iserver/accounts while the session is primed, and
    after a nightly reset (unprimed) the first history request primes it itself."""
    def accounts_calls() -> int:
        stats = httpx.get(f"{simulator.admin_url}/stats", timeout=5).json()
        return sum(n for path, n in stats["by_path"].items() if path.endswith("/iserver/accounts"))

    client.ensure_session()
    primed = accounts_calls()
    assert client.ensure_session(prime=False).healthy and accounts_calls() == primed
    admin(simulator, "/session", {"primed": False})  # the nightly reset
    assert client.ensure_session(prime=False).healthy and accounts_calls() == primed
    bars = client.daily_bars(client.resolve_contract("AAPL"), date(2024, 1, 2), date(2024, 1, 31))
    assert len(bars) == 21 and accounts_calls() == primed + 1


# ---------------------------------------------------------------- contracts and market data
def test_contract_lookup_picks_the_us_listing(client):
    aapl = client.resolve_contract("aapl")
    assert (aapl.symbol, aapl.conid) == ("AAPL", 265598)
    with pytest.raises(E.UnknownSymbolError, match="ZZZZQ"):
        client.resolve_contract("ZZZZQ")


def test_snapshot_preflight_then_values(client, simulator):
    admin(simulator, "/clock", {"now": "2025-01-10T15:00:00Z"})
    client.ensure_session()
    snaps = client.snapshot([client.resolve_contract("TSLA"), client.resolve_contract("NVDA")], wait_s=0.01)
    assert {s.symbol for s in snaps} == {"TSLA", "NVDA"}
    for s in snaps:
        assert s.last_price_type == "last" and s.bid <= s.last <= s.ask
        assert s.captured_at == datetime(2025, 1, 10, 15, tzinfo=UTC)
        assert s.bid_size and s.bid_size % 100 == 0  # gateway sends hundreds of shares


def test_ten_years_of_daily_bars_arrive_complete_across_chunks(client):
    client.ensure_session()
    cal = MarketCalendar()
    end = cal.last_completed_session(datetime.now(UTC))
    start = cal.sessions_back(end, 2519)
    bars = client.daily_bars(client.resolve_contract("NVDA"), start, end)
    assert [b.session_date for b in bars] == cal.sessions_between(start, end)
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in bars)


def test_no_data_and_malformed_history(client, simulator):
    client.ensure_session()
    contract = client.resolve_contract("MSFT")
    admin(simulator, "/bars", {"symbol": "MSFT", "no_data": True})
    with pytest.raises(E.NoDataError, match="MSFT"):
        client.daily_bars(contract, date(2024, 1, 2), date(2024, 1, 31))
    admin(simulator, "/reset")
    admin(simulator, "/bars", {"symbol": "MSFT", "bars": [{"date": "2024-01-10", "o": 10, "h": 9, "l": 8,
                                                              "c": 8.5, "v": 5}]})
    with pytest.raises(E.InvalidBarError, match=r"MSFT.*2024-01-10"):
        client.daily_bars(contract, date(2024, 1, 2), date(2024, 1, 31))


# ---------------------------------------------------------------- injected faults
def test_transient_429_and_503_are_retried(client, simulator):
    client.ensure_session()
    fault(simulator, path="/iserver/secdef/search", status=429, times=2)
    fault(simulator, path="/trsrv/stocks", status=503, times=1)
    assert client.resolve_contract("IBM").conid == 8314
    assert client.stats()["retries"] >= 2


def test_persistent_429_gives_rate_limited_error(client, simulator):
    fault(simulator, path="/iserver/auth/status", status=429, times=-1)
    with pytest.raises(E.RateLimitedError):
        client.auth_status()


def test_persistent_5xx_gives_gateway_server_error(client, simulator):
    fault(simulator, path="/iserver/auth/status", status=503, times=-1)
    with pytest.raises(E.GatewayServerError) as info:
        client.auth_status()
    assert info.value.status_code == 503


def test_timeouts_give_gateway_unreachable(simulator):
    fault(simulator, path="/iserver/auth/status", latency_ms=800, times=-1)
    with IBKRClient(simulator.base_url, timeout=0.2, retries=1, backoff_initial=0.01) as slow, \
            pytest.raises(E.GatewayUnreachableError, match=r"127\.0\.0\.1"):
        slow.auth_status()


def test_malformed_json_gives_malformed_response(client, simulator):
    fault(simulator, path="/iserver/auth/status", malformed=True, times=1)
    with pytest.raises(E.MalformedResponseError, match="/iserver/auth/status"):
        client.auth_status()


def test_401_mid_session_is_not_retried(client, simulator):
    client.ensure_session()
    fault(simulator, path="/iserver/marketdata/history", status=401, times=1)
    with pytest.raises(E.NotAuthenticatedError):
        client.history(265598, period="30d", bar="1d")
    assert client.stats()["retries"] == 0


def test_unreachable_gateway_is_an_error():
    with IBKRClient("http://127.0.0.1:9/v1/api", retries=1, backoff_initial=0.01) as c, \
            pytest.raises(E.GatewayUnreachableError, match=r"127\.0\.0\.1:9"):
        c.auth_status()


# ---------------------------------------------------------------- orders
def _order(coid: str, **kw) -> OrderRequest:
    return OrderRequest(conid=265598, side="BUY", quantity=3, order_type="MKT", tif="DAY", coid=coid, **kw)


def test_order_with_confirmation_chain_and_duplicate_coid(client, simulator):
    # The live-orders pre-flight needs two calls, and IBKR paces that endpoint at 1 per 5 s: the
    # production client waits (endpoint pacing); this fast client skips pacing, so the gateway must too.
    # Two accepted warnings (include/config/order_questions.py) for every order, confirmed in a chain.
    admin(simulator, "/config", {"rate_limits": False, "questions": ["o163", "o451"]})
    client.ensure_session()
    ack = client.place_order(_order("intent-1"))
    assert ack.order_id.isdigit() and ack.questions_confirmed == ["o163", "o451"]
    with pytest.raises(E.DuplicateOrderError, match="intent-1"):
        client.place_order(_order("intent-1"))
    book = httpx.get(f"{simulator.admin_url}/orders").json()
    orders = book["orders"] if isinstance(book, dict) else book
    assert sum(1 for o in orders if o.get("cOID", o.get("coid")) == "intent-1") == 1
    live = client.live_orders(preflight_wait_s=0.01)
    assert [o.coid for o in live] == ["intent-1"]
    status = client.order_status(int(ack.order_id))
    assert status.side == "BUY" and status.status == "Filled"  # fill_mode=immediate in tests


def test_order_placement_is_not_retried_on_5xx(client, simulator):
    client.ensure_session()
    fault(simulator, path="/iserver/account/.*/orders", method="POST", status=503, times=1)
    with pytest.raises(E.GatewayServerError) as caught:
        client.place_order(_order("intent-2"))
    assert client.stats()["retries"] == 0
    assert (caught.value.stage, caught.value.after_acceptance) == ("place", False)  # first POST: no question yet


# ---------------------------------------------------------------- TLS and pacing
def test_tls_gateway_with_self_signed_certificate():
    from sim.ibkr.server import SimulatorServer

    with SimulatorServer(tls=True) as sim:
        assert sim.base_url.startswith("https://")
        with IBKRClient(sim.base_url, verify=False) as insecure:
            assert insecure.auth_status().authenticated
        with IBKRClient(sim.base_url, verify=True, retries=0) as strict, \
                pytest.raises(E.GatewayUnreachableError, match=r"(?i)certificate"):
            strict.auth_status()


def test_client_pacing_keeps_the_gateway_free_of_429s(simulator):
    admin(simulator, "/config", {"history_latency_ms": 150})
    with IBKRClient(simulator.base_url) as paced:  # defaults: 10 req/s, 5 concurrent history requests
        paced.ensure_session()
        admin(simulator, "/stats/reset")
        end = datetime.now(UTC)
        with ThreadPoolExecutor(10) as pool:
            list(pool.map(lambda i: paced.history(265598, period="30d", bar="1d",
                                                  start_time=end - timedelta(days=i)), range(20)))
    stats = httpx.get(f"{simulator.admin_url}/stats").json()
    assert stats["http_429"] == 0
    assert stats["history_max_concurrent"] <= 5


def test_client_is_thread_safe_under_concurrent_contract_lookups(client, simulator):
    admin(simulator, "/config", {"rate_limits": False})  # this client is unpaced on purpose
    client.ensure_session()
    errors: list[Exception] = []

    def worker() -> None:
        try:
            for sym in ("AAPL", "MSFT", "TSLA", "NVDA"):
                client.resolve_contract(sym)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
