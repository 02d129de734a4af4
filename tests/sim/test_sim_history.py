"""Historical bars (§6.1, checklist 5): shape, units, calendar, determinism, caps, overrides, concurrency."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, date, datetime

from starlette.testclient import TestClient

from sim.ibkr.app import create_app
from sim.ibkr.config import SimulatorConfig
from tests.sim.sim_support import AAPL, ADMIN, API, IN_SESSION, TSLA, WEEKEND, ClientFactory

HIST = f"{API}/iserver/marketdata/history"
KEYS = [
    "serverId",
    "symbol",
    "text",
    "priceFactor",
    "startTime",
    "high",
    "low",
    "timePeriod",
    "barLength",
    "mdAvailability",
    "mktDataDelay",
    "outsideRth",
    "volumeFactor",
    "priceDisplayRule",
    "priceDisplayValue",
    "negativeCapable",
    "messageVersion",
    "data",
    "points",
    "travelTime",
]


def bars(client: TestClient, conid: int = AAPL, **params: str) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in {"period": "1y", "bar": "1d", **params}.items())
    response = client.get(f"{HIST}?conid={conid}&{query}")
    assert response.status_code == 200, response.text
    return response.json()["data"]


def day(bar: dict) -> date:
    return datetime.fromtimestamp(bar["t"] / 1000, UTC).date()


def test_response_shape(client: TestClient) -> None:
    body = client.get(f"{HIST}?conid={AAPL}&period=1m&bar=1d&outsideRth=false").json()
    assert list(body) == KEYS
    assert (body["symbol"], body["text"], body["barLength"], body["mdAvailability"]) == (
        "AAPL",
        "APPLE INC",
        86400,
        "S",
    )
    assert (body["priceFactor"], body["volumeFactor"], body["mktDataDelay"], body["timePeriod"]) == (
        100,
        1,
        0,
        "1m",
    )
    assert isinstance(body["serverId"], str) and isinstance(body["travelTime"], int)
    assert body["points"] == len(body["data"]) - 1
    assert 19 <= len(body["data"]) <= 23  # `m` is months, not minutes
    first = body["data"][0]
    assert set(first) == {"o", "c", "h", "l", "v", "t"}
    assert body["startTime"] == datetime.fromtimestamp(first["t"] / 1000, UTC).strftime("%Y%m%d-%H:%M:%S")
    assert all(isinstance(first[k], float) for k in "ochl") and isinstance(first["t"], int)
    assert all(b["t"] % 86_400_000 == 0 for b in body["data"])  # session date at 00:00 UTC, in ms
    price, volume, minutes = body["high"].split("/")
    assert int(price) == round(max(b["h"] for b in body["data"]) * 100)
    assert float(volume) == round(sum(b["v"] for b in body["data"]), 2) and int(minutes) % 1440 == 0


def test_volume_in_round_lots_and_ohlc_consistent_everywhere(client: TestClient) -> None:
    sim = client.app.state.sim
    inst = sim.registry.get("AAPL")
    series = sim.bars.base(inst, int(IN_SESSION.timestamp() * 1000))
    data = bars(client, startTime="20241231-21:00:00", period="1y")
    index = {int(o): i for i, o in enumerate(series.ordinals)}
    for bar in data:
        i = index[day(bar).toordinal()]
        assert bar["v"] == series.v[i] / 100  # volume / 100, fractional allowed
    assert any(b["v"] != int(b["v"]) for b in data)
    # Every generated bar since 2010: positive and consistent.
    o, h, low, c = series.o, series.h, series.low, series.c
    assert (low > 0).all() and (h >= o).all() and (h >= c).all() and (low <= o).all() and (low <= c).all()
    assert (series.v >= 1).all()


def test_xnys_calendar(client: TestClient) -> None:
    days = {day(b) for b in bars(client, startTime="20241231-23:00:00", period="1y")}
    assert date(2024, 7, 4) not in days and date(2024, 12, 25) not in days
    assert date(2024, 11, 29) in days  # early-close day still has a bar
    assert date(2024, 7, 3) in days and not any(d.weekday() >= 5 for d in days)


def test_cap_of_1000_most_recent_bars(client: TestClient) -> None:
    data = bars(client, period="15y")
    assert len(data) == 1000
    assert day(data[-1]) == IN_SESSION.date()  # the most recent ones, including today's partial bar
    assert [b["t"] for b in data] == sorted(b["t"] for b in data)


def test_deterministic_across_apps_and_seeds(make_client: ClientFactory) -> None:
    a, b, other = (make_client(primed=True, seed=s) for s in (7, 7, 8))
    assert bars(a, TSLA, period="5y") == bars(b, TSLA, period="5y")
    assert bars(a, TSLA, period="5y") != bars(other, TSLA, period="5y")


def test_deterministic_across_processes(client: TestClient) -> None:
    """zlib.crc32 seeding, not hash(): another interpreter (other PYTHONHASHSEED) gives the same bars."""
    code = (
        "from datetime import date; from sim.ibkr.exchange import session_table;"
        "from sim.ibkr.prices import gbm_series;"
        "s = gbm_series(42, 'AAPL', session_table(), date(2010, 1, 4), 4000);"
        "print(repr([float(s.c[-1]), float(s.v[1234]), float(s.h[99])]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": ".", "PYTHONHASHSEED": "123"},
    ).stdout.strip()
    from sim.ibkr.exchange import session_table
    from sim.ibkr.prices import gbm_series

    s = gbm_series(42, "AAPL", session_table(), date(2010, 1, 4), 4000)
    assert out == repr([float(s.c[-1]), float(s.v[1234]), float(s.h[99])])


def test_no_data_and_parameter_errors(client: TestClient) -> None:
    r = client.get(f"{HIST}?conid={AAPL}&period=5d&bar=1d&startTime=20090101-00:00:00")
    assert (r.status_code, r.json()) == (200, {"error": "No data."})
    client.post(f"{ADMIN}/bars", json={"symbol": "AAPL", "no_data": True})
    assert client.get(f"{HIST}?conid={AAPL}&period=5d&bar=1d").json() == {"error": "No data."}
    assert client.get(f"{HIST}?conid={AAPL}&period=5x&bar=1d").status_code == 400
    assert client.get(f"{HIST}?conid={AAPL}&period=5d&bar=7min").status_code == 400
    assert client.get(f"{HIST}?conid=1&period=5d&bar=1d").status_code == 400
    assert "error" in client.get(f"{HIST}?conid={AAPL}&period=5d&bar=1d&startTime=garbage").json()


def test_intraday_spellings(client: TestClient) -> None:
    assert bars(client, period="1d", bar="5min") == bars(client, period="1d", bar="5mins")
    weekly = client.get(f"{HIST}?conid={AAPL}&period=1y&bar=1w").json()
    assert weekly["barLength"] == 604800 and 50 <= len(weekly["data"]) <= 54


def test_weekend_window_ends_with_friday(make_client: ClientFactory) -> None:
    c = make_client(now=WEEKEND, primed=True)
    assert day(bars(c, period="1w")[-1]) == date(2025, 1, 3)


def test_overrides_pass_through_as_given(client: TestClient) -> None:
    injected = [
        {"date": "2024-12-30", "o": -5.0, "h": "bad", "l": None, "c": 1.0, "v": -100},
        {"date": "2024-12-31", "o": 10.0, "h": 9.0, "l": 11.0, "c": 10.5, "v": 0},
    ]
    client.post(f"{ADMIN}/bars", json={"symbol": "TSLA", "bars": injected})
    data = {day(b): b for b in bars(client, TSLA, period="2w")}
    assert data[date(2024, 12, 30)] == {
        "o": -5.0,
        "c": 1.0,
        "h": "bad",
        "l": None,
        "v": -100,
        "t": 1735516800000,
    }
    assert data[date(2024, 12, 31)]["h"] == 9.0 and data[date(2024, 12, 27)]["o"] > 0


def test_csv_replay(make_client: ClientFactory, tmp_path: object) -> None:
    folder = tmp_path  # type: ignore[assignment]
    (folder / "ACME.csv").write_text(  # type: ignore[operator]
        "date,open,high,low,close,volume\n2024-12-31,10,11,9.5,10.5,1234567\n2024-12-30,9,10.2,8.8,10,200000\n"
    )
    c = make_client(bars_csv_dir=str(folder), primed=True)
    conid = c.get(f"{API}/trsrv/stocks?symbols=ACME").json()["ACME"][0]["contracts"][0]["conid"]
    data = bars(c, conid, period="1m")
    assert [(day(b), b["o"], b["h"], b["l"], b["c"], b["v"]) for b in data] == [
        (date(2024, 12, 30), 9.0, 10.2, 8.8, 10.0, 2000.0),
        (date(2024, 12, 31), 10.0, 11.0, 9.5, 10.5, 12345.67),
    ]


def test_concurrency_cap_gives_429() -> None:
    app = create_app(
        SimulatorConfig(now=IN_SESSION, primed=True, history_latency_ms=300, global_rate_per_sec=100)
    )
    codes: list[int] = []
    with TestClient(app) as c:

        def pull() -> None:
            codes.append(c.get(f"{HIST}?conid={AAPL}&period=5d&bar=1d").status_code)

        threads = [threading.Thread(target=pull) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = c.get(f"{ADMIN}/stats").json()
    assert sorted(codes) == [200] * 5 + [429] * 3
    assert stats["history_requests"] == 8 and stats["history_429"] == 3 and stats["http_429"] == 3
    assert stats["history_max_concurrent"] == 5 and stats["history_inflight"] == 0
