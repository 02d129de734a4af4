"""IBKRClient over httpx.MockTransport handlers that act like the gateway on hard-to-produce paths."""

from __future__ import annotations

import json
import logging
import pickle
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from include.ibkr import errors as E
from include.ibkr.client import IBKRClient
from include.ibkr.models import Contract, OrderRequest

BASE = "http://gw.test/v1/api"
ACCOUNTS = {"accounts": ["DU123456"], "selectedAccount": "DU123456", "isPaper": True,
            "serverInfo": {"serverName": "SimC1", "serverVersion": "sim"}}  # fmt: skip
AAPL = Contract(symbol="AAPL", conid=265598, exchange="NASDAQ")
Handler = Callable[[httpx.Request], httpx.Response]


def path_of(request: httpx.Request) -> str:
    return request.url.path.removeprefix("/v1/api")


def make_client(handler: Handler, **kw: object) -> IBKRClient:
    opts: dict[str, object] = {
        "transport": httpx.MockTransport(handler), "rate_per_sec": None, "endpoint_pacing": False,
        "backoff_initial": 0.001, "backoff_max": 0.005, "account_id": "DU123456", "retries": 3,
    }  # fmt: skip
    opts.update(kw)
    return IBKRClient(BASE, **opts)  # type: ignore[arg-type]


def responder(*responses: httpx.Response | Exception, calls: list[httpx.Request]) -> Handler:
    queue = list(responses)

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item

    return handle


# ------------------------------------------------------------------ retries
def test_retry_then_success_on_429_and_503(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[httpx.Request] = []
    handler = responder(
        httpx.Response(429, json={"error": "Too many requests"}),
        httpx.Response(503, text="Service Unavailable"),
        httpx.Response(200, json=ACCOUNTS),
        calls=calls,
    )  # fmt: skip
    caplog.set_level(logging.WARNING, logger="include.ibkr.client")
    with make_client(handler) as client:
        assert client.accounts().accounts == ["DU123456"]
        assert client.server_name == "SimC1"
    assert len(calls) == 3
    reasons = " ".join(r.getMessage() for r in caplog.records)
    assert "RateLimitedError" in reasons and "GatewayServerError" in reasons and "retry 2/3" in reasons


@pytest.mark.parametrize(
    ("response", "error"),
    [(httpx.Response(429, json={"error": "Too many requests"}), E.RateLimitedError),
     (httpx.Response(503, text="Service Unavailable"), E.GatewayServerError)],
)  # fmt: skip
def test_gives_up_after_retries(response: httpx.Response, error: type[E.IBKRError]) -> None:
    calls: list[httpx.Request] = []
    with make_client(responder(response, calls=calls), retries=2) as client, pytest.raises(error):
        client.accounts()
    assert len(calls) == 3


def test_500_and_401_are_not_retried() -> None:
    calls: list[httpx.Request] = []
    with (
        make_client(responder(httpx.Response(401), calls=calls)) as client,
        pytest.raises(E.NotAuthenticatedError, match="log in at the gateway"),
    ):
        client.accounts()
    assert len(calls) == 1


def _order() -> OrderRequest:
    return OrderRequest(conid=265598, side="BUY", quantity=1, order_type="LMT", price=165.0, coid="run1-AAPL")


def test_order_post_not_retried_on_503() -> None:
    calls: list[httpx.Request] = []
    with (
        make_client(responder(httpx.Response(503, text="down"), calls=calls)) as client,
        pytest.raises(E.GatewayServerError),
    ):
        client.place_order(_order())
    assert len(calls) == 1


def test_order_post_not_retried_on_read_timeout() -> None:
    calls: list[httpx.Request] = []
    with (
        make_client(responder(httpx.ReadTimeout("timed out"), calls=calls)) as client,
        pytest.raises(E.GatewayUnreachableError, match="may have reached IBKR"),
    ):
        client.place_order(_order())
    assert len(calls) == 1


def test_order_post_retried_on_connect_error_and_on_429() -> None:
    calls: list[httpx.Request] = []
    handler = responder(
        httpx.ConnectError("refused"), httpx.Response(429, json={"error": "Too many requests"}),
        httpx.Response(200, json=[{"order_id": "1234567890", "order_status": "Submitted"}]), calls=calls,
    )  # fmt: skip
    with make_client(handler) as client:
        ack = client.place_order(_order())
    assert (ack.order_id, ack.coid, len(calls)) == ("1234567890", "run1-AAPL", 3)
    body = json.loads(calls[-1].content)
    assert path_of(calls[-1]) == "/iserver/account/DU123456/orders"
    expected = {"conid": 265598, "orderType": "LMT", "side": "BUY", "tif": "DAY", "quantity": 1.0,
                "price": 165.0, "cOID": "run1-AAPL", "outsideRTH": False, "acctId": "DU123456"}  # fmt: skip
    assert body == {"orders": [expected]}


def test_get_retried_on_read_timeout() -> None:
    calls: list[httpx.Request] = []
    handler = responder(httpx.ReadTimeout("slow"), httpx.Response(200, json=ACCOUNTS), calls=calls)
    with make_client(handler) as client:
        client.accounts()
    assert len(calls) == 2


# ------------------------------------------------------------------ session priming and bodies
def test_not_primed_primes_once_and_retries() -> None:
    seen: list[str] = []
    primed = False

    def handle(request: httpx.Request) -> httpx.Response:
        nonlocal primed
        seen.append(path_of(request))
        if path_of(request) == "/iserver/accounts":
            primed = True
            return httpx.Response(200, json=ACCOUNTS)
        if not primed:
            return httpx.Response(500, json={"error": "Please query /accounts first"})
        return httpx.Response(200, json={"orders": [], "snapshot": True})

    with make_client(handle) as client:
        assert client.live_orders(preflight_wait_s=0) == []
    assert seen[:3] == ["/iserver/account/orders", "/iserver/accounts", "/iserver/account/orders"]


def test_invalid_json_is_malformed() -> None:
    handler = responder(httpx.Response(200, text="<html>oops</html>"), calls=[])
    with make_client(handler) as client, pytest.raises(E.MalformedResponseError) as info:
        client.accounts()
    assert info.value.endpoint == "/iserver/accounts" and "invalid JSON" in str(info.value)


def test_connection_refused_names_url() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1/api"
    started = time.monotonic()
    with (
        IBKRClient(url, retries=2, backoff_initial=0.01, backoff_max=0.02, endpoint_pacing=False) as client,
        pytest.raises(E.GatewayUnreachableError) as info,
    ):
        client.tickle()
    assert f"{url}/tickle" in str(info.value) and "must be running" in str(info.value)
    assert time.monotonic() - started < 5


def test_ensure_session_paths() -> None:
    calls: list[str] = []
    states = iter([{"authenticated": False, "competing": False, "connected": False},
                   {"authenticated": True, "competing": False, "connected": True}])  # fmt: skip

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(path_of(request))
        if path_of(request) == "/iserver/auth/status":
            return httpx.Response(200, json=next(states))
        if path_of(request) == "/iserver/auth/ssodh/init":
            assert json.loads(request.content) == {"publish": True, "compete": True}
            return httpx.Response(200, json={"authenticated": True, "competing": False, "connected": True})
        return httpx.Response(200, json=ACCOUNTS)

    with make_client(handle) as client:
        assert client.ensure_session(reauth_wait_s=0).healthy
    assert calls == [
        "/iserver/auth/status",
        "/iserver/auth/ssodh/init",
        "/iserver/auth/status",
        "/iserver/accounts",
    ]
    competing = {"authenticated": True, "competing": True, "connected": True}
    with (
        make_client(responder(httpx.Response(200, json=competing), calls=[])) as client,
        pytest.raises(E.CompetingSessionError),
    ):
        client.ensure_session()
    with (
        make_client(responder(httpx.Response(401), calls=[])) as client,
        pytest.raises(E.NotAuthenticatedError),
    ):
        client.ensure_session()


def test_repr_masks_account_and_password() -> None:
    client = IBKRClient("https://user:s3cret@localhost:5000/v1/api", account_id="DU123456")
    text = repr(client)
    client.close()
    assert "s3cret" not in text and "DU123456" not in text and "localhost:5000" in text


# ------------------------------------------------------------------ orders
def test_reply_chain_of_two_questions() -> None:
    calls: list[httpx.Request] = []
    handler = responder(
        httpx.Response(200, json=[{"id": "q-1", "message": ["price exceeds 3%"], "isSuppressed": False,
                                   "messageIds": ["o163"]}]),
        httpx.Response(200, json=[{"id": "q-2", "message": ["no market data"], "isSuppressed": False,
                                   "messageIds": ["o354"]}]),
        httpx.Response(200, json=[{"order_id": "42", "order_status": "PreSubmitted"}]),
        calls=calls,
    )  # fmt: skip
    with make_client(handler) as client:
        ack = client.place_order(_order())
    assert ack.order_id == "42" and ack.questions_confirmed == ["o163", "o354"]
    assert [path_of(c) for c in calls[1:]] == ["/iserver/reply/q-1", "/iserver/reply/q-2"]
    assert all(json.loads(c.content) == {"confirmed": True} for c in calls[1:])


def test_question_with_confirm_false_is_rejected() -> None:
    question = [{"id": "q-1", "message": ["price exceeds 3%"], "messageIds": ["o163"]}]
    with (
        make_client(responder(httpx.Response(200, json=question), calls=[])) as client,
        pytest.raises(E.OrderRejectedError, match="price exceeds 3%"),
    ):
        client.place_order(_order(), confirm=False)


def test_a_question_with_one_unaccepted_id_is_declined_even_if_the_decline_fails() -> None:
    calls: list[httpx.Request] = []
    question = [{"id": "q-1", "message": ["price exceeds 3%", "multiple accounts"], "isSuppressed": False,
                 "messageIds": ["o163", "p6"]}]
    handler = responder(httpx.Response(200, json=question), httpx.Response(503, text="Service Unavailable"),
                        calls=calls)
    with make_client(handler, retries=0) as client, pytest.raises(E.OrderQuestionRefusedError) as caught:
        client.place_order(_order())
    err = caught.value
    assert err.message_ids == ["o163", "p6"] and err.question == "price exceeds 3% | multiple accounts"
    assert "declining it failed" in str(err) and err.reply_id == "q-1"
    assert [path_of(c) for c in calls[1:]] == ["/iserver/reply/q-1"]
    assert json.loads(calls[1].content) == {"confirmed": False}
    copy = pickle.loads(pickle.dumps(err))  # errors cross process boundaries (Airflow, multiprocessing)
    assert (type(copy), copy.question, str(copy)) == (E.OrderQuestionRefusedError, err.question, str(err))


def test_a_malformed_answer_to_the_reply_is_marked_after_acceptance() -> None:
    question = [{"id": "q-1", "message": ["price exceeds 3%"], "messageIds": ["o163"]}]
    handler = responder(httpx.Response(200, json=question), httpx.Response(200, text='[{"order_id": '),
                        calls=[])
    with make_client(handler) as client, pytest.raises(E.MalformedResponseError) as caught:
        client.place_order(_order())
    assert (caught.value.stage, caught.value.after_acceptance) == ("reply", True)


def test_live_orders_preflight_then_data() -> None:
    live = {
        "orders": [{"orderId": 7, "conid": 265598, "ticker": "AAPL", "side": "BUY", "status": "Submitted"}]
    }
    calls: list[httpx.Request] = []
    preflight = httpx.Response(200, json={"orders": [], "snapshot": False})
    handler = responder(preflight, httpx.Response(200, json=live), calls=calls)
    with make_client(handler) as client:
        (order,) = client.live_orders(preflight_wait_s=0)
    assert order.order_id == 7 and len(calls) == 2



def test_live_orders_trusts_a_complete_empty_snapshot() -> None:
    """``"snapshot": true`` says nothing is held back: an empty first answer is final (no second call, which
    IBKR's 1 req/5 s pacing of this endpoint would delay)."""
    calls: list[httpx.Request] = []
    handler = responder(httpx.Response(200, json={"orders": [], "snapshot": True}), calls=calls)
    with make_client(handler) as client:
        assert client.live_orders(preflight_wait_s=5) == []
    assert len(calls) == 1


# ------------------------------------------------------------------ market data
def test_snapshot_preflight_then_data_and_missing_symbol() -> None:
    populated = [{"conid": 265598, "_updated": 1712596911593, "31": "168.42", "server_id": "q1"}]
    handler = responder(httpx.Response(200, json=[{"conid": 265598, "conidEx": "265598"}]),
                        httpx.Response(200, json=populated), calls=(calls := []))  # fmt: skip
    with make_client(handler) as client:
        (snap,) = client.snapshot([AAPL], wait_s=0)
    assert snap.last == 168.42 and len(calls) == 2
    assert calls[0].url.params["conids"] == "265598" and calls[0].url.params["fields"].startswith("31,55")
    pre = httpx.Response(200, json=[{"conid": 265598, "conidEx": "265598"}])
    with make_client(responder(pre, calls=[])) as client, pytest.raises(E.NoDataError, match="AAPL"):
        client.snapshot([AAPL], attempts=2, wait_s=0)


def test_resolve_contract_falls_back_to_trsrv_and_caches() -> None:
    trsrv = {"AAPL": [{"name": "APPLE INC", "assetClass": "STK",
                       "contracts": [{"conid": 265598, "exchange": "NASDAQ", "isUS": True}]}]}  # fmt: skip
    handler = responder(httpx.Response(200, json=[]), httpx.Response(200, json=trsrv), calls=(calls := []))
    with make_client(handler) as client:
        assert client.resolve_contract("aapl").conid == 265598
        assert client.resolve_contracts(["AAPL"])["AAPL"].conid == 265598
        with pytest.raises(E.UnknownSymbolError):
            client.resolve_contract("not a ticker!")
    assert [path_of(c) for c in calls] == ["/iserver/secdef/search", "/trsrv/stocks"]


def _daily_bar_server(first_listed: date, requests: list[dict[str, str]], delay: float = 0.0) -> Handler:
    """Serves weekday bars stamped 00:00 UTC for [startTime - period + 1 day, startTime]."""

    def handle(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        requests.append(params)
        assert params["bar"] == "1d" and params["outsideRth"] == "false"
        days = int(params["period"].removesuffix("d"))
        assert 1 <= days <= 1000  # period's maximum in days (§6.1)
        end = datetime.strptime(params["startTime"], "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
        assert (end.hour, end.minute, end.second) == (23, 59, 59)
        time.sleep(delay)
        first = max(end.date() - timedelta(days=days - 1), first_listed)
        data = []
        # One day of overlap with the neighbouring window (and outside the asked range): must be dropped.
        day = max(first - timedelta(days=1), first_listed)
        while day <= end.date():
            if day.weekday() < 5:
                t = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
                data.append({"o": 10.0, "h": 11.0, "l": 9.0, "c": 10.5, "v": 1234.5, "t": t})
            day += timedelta(days=1)
        if not data or end.date() < first_listed:
            return httpx.Response(200, json={"error": "No data."})
        return httpx.Response(200, json={"symbol": "AAPL", "data": data, "points": len(data)})

    return handle


def test_daily_bars_chunks_ten_years() -> None:
    start, end = date(2014, 1, 1), date(2023, 12, 31)
    requests: list[dict[str, str]] = []
    with make_client(_daily_bar_server(date(2016, 6, 1), requests)) as client:
        bars = client.daily_bars(AAPL, start, end)
    assert len(requests) == 4  # 3652 days / 1000 per window
    assert requests[0]["startTime"] == "20231231-23:59:59" and requests[0]["period"] == "1000d"
    assert requests[-1]["period"] == f"{(end - start).days + 1 - 3 * 1000}d"
    dates = [b.session_date for b in bars]
    assert dates == sorted(set(dates)) and dates[0] == date(2016, 6, 1) and dates[-1] == date(2023, 12, 29)
    listed = date(2016, 6, 1)
    weekdays = sum(1 for i in range((end - listed).days + 1) if (listed + timedelta(i)).weekday() < 5)
    assert len(bars) == weekdays and bars[0].volume == 123_450.0 and bars[0].conid == 265598
    with (
        make_client(_daily_bar_server(date(2030, 1, 1), [])) as client,
        pytest.raises(E.NoDataError, match=r"AAPL between 2014-01-01 and 2023-12-31"),
    ):
        client.daily_bars(AAPL, start, end)


def test_history_concurrency_is_capped_across_threads() -> None:
    server = _daily_bar_server(date(2020, 1, 1), [], delay=0.02)
    with make_client(server, max_concurrent_history=2) as client, ThreadPoolExecutor(max_workers=6) as pool:
        results = list(
            pool.map(lambda _: client.daily_bars(AAPL, date(2024, 1, 1), date(2024, 3, 1)), range(6))
        )
    assert all(len(bars) == 45 for bars in results)  # weekdays from 2024-01-01 to 2024-03-01
    assert client.limiter.history_max_inflight == 2 and client.limiter.history_inflight == 0


def test_account_ids_in_request_paths_are_masked_in_errors():
    from include.ibkr.errors import GatewayServerError, mask_account_ids

    assert mask_account_ids("/iserver/account/DU1234567/orders") == "/iserver/account/DU…567/orders"
    assert mask_account_ids("/portfolio/U7654321/positions/0") == "/portfolio/U…321/positions/0"
    assert mask_account_ids("/iserver/contract/265598/info") == "/iserver/contract/265598/info"  # a conid
    err = GatewayServerError("boom", endpoint="/iserver/account/DU1234567/orders", status_code=500)
    assert "DU1234567" not in str(err) and "DU…567" in str(err)


def test_httpx_request_log_lines_mask_the_account_id(caplog):
    import logging

    import httpx

    import include.ibkr.client.core  # noqa: F401  # installs the filter on httpx's logger

    with caplog.at_level(logging.INFO, logger="httpx"):
        logging.getLogger("httpx").info('HTTP Request: %s %s "%s %d %s"', "POST",
                                        httpx.URL("https://gw/v1/api/iserver/account/DU1234567/orders"), "HTTP/1.1",
                                        200, "OK")
    assert "DU1234567" not in caplog.text and "/iserver/account/DU…567/orders" in caplog.text
