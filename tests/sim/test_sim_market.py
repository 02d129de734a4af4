"""Contract lookup and snapshots: pre-flight, string values, C/H prefixes, K/M volumes (§4, §5)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from sim.ibkr import formats
from tests.sim.sim_support import (
    AAPL,
    ADMIN,
    API,
    HOLIDAY,
    IN_SESSION,
    SPY,
    TSLA,
    WEEKEND,
    ClientFactory,
    snapshot,
)

ALL_FIELDS = "31,55,70,71,82,83,84,85,86,87,88,6119,6509,7059,7295,7741,7762"


def test_secdef_search_returns_string_conids_and_a_foreign_listing(client: TestClient) -> None:
    hits = client.get(f"{API}/iserver/secdef/search?symbol=AAPL").json()
    assert [h["conid"] for h in hits] == ["265598", "38708077"]
    assert hits[0]["companyHeader"] == "APPLE INC - NASDAQ" and hits[1]["description"] == "MEXI"
    posted = client.post(f"{API}/iserver/secdef/search", json={"symbol": "AAPL", "secType": "STK"}).json()
    assert posted == hits
    unknown = client.get(f"{API}/iserver/secdef/search?symbol=ZZZZQ")
    assert (unknown.status_code, unknown.json()) == (200, [])


def test_trsrv_stocks_int_conids_and_is_us(client: TestClient) -> None:
    body = client.get(f"{API}/trsrv/stocks?symbols=AAPL,MSFT,ZZZZQ").json()
    assert set(body) == {"AAPL", "MSFT"}
    contracts = body["AAPL"][0]["contracts"]
    assert contracts == [
        {"conid": 265598, "exchange": "NASDAQ", "isUS": True},
        {"conid": 38708077, "exchange": "MEXI", "isUS": False},
    ]
    assert client.get(f"{API}/trsrv/stocks?symbols=ZZZZQ").json() == {}


def test_contract_info(client: TestClient) -> None:
    info = client.get(f"{API}/iserver/contract/{SPY}/info").json()
    assert (info["con_id"], info["symbol"], info["instrument_type"], info["currency"]) == (
        SPY,
        "SPY",
        "STK",
        "USD",
    )


def test_snapshot_preflight_then_strings(client: TestClient) -> None:
    url = f"{API}/iserver/marketdata/snapshot?conids={AAPL},{SPY}&fields={ALL_FIELDS}"
    first = client.get(url).json()
    assert first == [{"conid": AAPL, "conidEx": str(AAPL)}, {"conid": SPY, "conidEx": str(SPY)}]
    second = client.get(url).json()
    for item in second:
        assert isinstance(item["conid"], int) and isinstance(item["conidEx"], str)
        assert item["_updated"] == formats.epoch_ms(IN_SESSION)
        assert item["server_id"] == "q0" and item["6119"] == "q0" and item["6509"] == "RpB"
        tags = {k: v for k, v in item.items() if k.isdigit()}
        assert set(tags) == set(ALL_FIELDS.split(","))
        assert all(isinstance(v, str) for v in tags.values())
        assert re.fullmatch(r"\d+\.\d\d", item["31"])  # in session: no prefix
        assert float(item["84"]) <= float(item["31"]) <= float(item["86"])
        assert re.fullmatch(r"\d{1,3}(,\d{3})*", item["85"]) and re.fullmatch(r"\d{1,3}(,\d{3})*", item["88"])
        assert re.fullmatch(r"\d+(\.\d)?[KM]|\d+", item["87"])
        assert float(item["71"]) <= float(item["31"]) <= float(item["70"])
    # Fields named in the pre-flight stay attached: a later call may omit `fields` (§5).
    again = client.get(f"{API}/iserver/marketdata/snapshot?conids={AAPL}").json()[0]
    assert "31" in again and "7762" in again


def test_volume_and_size_formats() -> None:
    assert formats.volume_km(12_345_678) == "12.3M"
    assert formats.volume_km(456_700) == "456.7K"
    assert formats.volume_km(999) == "999"
    assert formats.hundreds(130_000) == "1,300"
    assert formats.hundreds(600) == "6"


@pytest.mark.parametrize("now", [WEEKEND, HOLIDAY])
def test_last_has_c_prefix_when_market_closed(make_client: ClientFactory, now: object) -> None:
    c = make_client(now=now)
    c.get(f"{API}/iserver/accounts")
    item = snapshot(c, str(AAPL), "31,7295,7741,7296")[0]
    assert item["31"].startswith("C")
    assert item["31"][1:] == item["7296"]  # the value is the latest close
    bars = c.get(f"{API}/iserver/marketdata/history?conid={AAPL}&period=5d&bar=1d").json()["data"]
    assert float(item["31"][1:]) == bars[-1]["c"]


def test_last_has_h_prefix_when_halted(client: TestClient) -> None:
    client.post(f"{ADMIN}/halt", json={"symbol": "TSLA", "halted": True})
    assert snapshot(client, str(TSLA), "31")[0]["31"].startswith("H")
    client.post(f"{ADMIN}/halt", json={"symbol": "TSLA", "halted": False})
    assert (
        not client.get(f"{API}/iserver/marketdata/snapshot?conids={TSLA}&fields=31")
        .json()[0]["31"][0]
        .isalpha()
    )


def test_last_moves_intraday_and_matches_partial_bar(client: TestClient) -> None:
    lasts = []
    for minutes in (0, 7, 93):
        when = (IN_SESSION + timedelta(minutes=minutes)).isoformat()
        client.post(f"{ADMIN}/clock", json={"now": when, "keep_session": True})  # no idle drop on the jump
        lasts.append(snapshot(client, str(AAPL), "31")[0]["31"])
        bars = client.get(f"{API}/iserver/marketdata/history?conid={AAPL}&period=2d&bar=1d").json()["data"]
        assert bars[-1]["t"] == formats.day_ms(IN_SESSION.date())  # today's bar, in progress
        assert bars[-1]["c"] == float(lasts[-1])
    assert len(set(lasts)) > 1


def test_unsubscribe(client: TestClient) -> None:
    r = client.post(f"{API}/iserver/marketdata/unsubscribe", json={"conid": AAPL})
    assert r.status_code == 404
    snapshot(client, str(AAPL), "31")
    assert client.post(f"{API}/iserver/marketdata/unsubscribe", json={"conid": AAPL}).status_code == 200
    # Unsubscribed: the next request is a pre-flight again.
    url = f"{API}/iserver/marketdata/snapshot?conids={AAPL}&fields=31"
    assert client.get(url).json() == [{"conid": AAPL, "conidEx": str(AAPL)}]
    assert client.get(f"{API}/iserver/marketdata/unsubscribeall").json() == {"confirmed": True}
    assert client.get(url).json() == [{"conid": AAPL, "conidEx": str(AAPL)}]


def test_synthetic_symbols(make_client: ClientFactory) -> None:
    c = make_client(synthetic_symbols=3, primed=True)
    assert (
        c.get(f"{API}/trsrv/stocks?symbols=SYN0003").json()["SYN0003"][0]["contracts"][0]["conid"]
        == 900000003
    )
    assert c.get(f"{API}/trsrv/stocks?symbols=SYN0004").json() == {}
    hist = c.get(f"{API}/iserver/marketdata/history?conid=900000001&period=1w&bar=1d").json()
    assert hist["symbol"] == "SYN0001" and len(hist["data"]) >= 4
