"""The pacing ledger: IBKR's windows kept in PostgreSQL, shared by every process that calls the gateway."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest

from include.ibkr.pacing_ledger import PacingLedger

REPO_ROOT = str(__import__("pathlib").Path(__file__).resolve().parents[2])


def test_reservations_from_separate_connections_share_one_window(market_db_url: str) -> None:
    """Two ledgers (two connections, as two task processes would have) reserve in one window of 2 requests per
    0.5 s: the third and fourth wait half a second after the first and second, the fifth half a second after the
    third, whoever asks."""
    gateway = f"test-ledger-{time.monotonic_ns()}"
    a, b = PacingLedger(market_db_url, gateway), PacingLedger(market_db_url, gateway)

    def between(call, *args):  # (earliest, latest) time the request may go, on this clock, and the delay
        asked = time.monotonic()
        delay = call(*args)
        return (asked + delay, time.monotonic() + delay), delay

    def overlap(x, y, slack=0.02):  # the ledger stamps its clock somewhere inside each call: compare intervals
        return x[0] - slack <= y[1] and y[0] - slack <= x[1]

    try:
        slots, delays = zip(*(between(ledger.reserve, [("w", 2, 0.5)]) for ledger in (a, b, a, b, a)), strict=True)
        assert delays[:2] == (0.0, 0.0)
        half = [(lo + 0.5, hi + 0.5) for lo, hi in slots]
        assert overlap(slots[2], half[0]), (slots, delays)
        assert overlap(slots[3], half[1]), (slots, delays)
        assert overlap(slots[4], half[2]), (slots, delays)
        # a request on two windows waits for the one that binds: here the tight per-endpoint one, 1 per 2 s
        other = f"{gateway}-two"
        first, delay = between(a.reserve, [("gateway", 10, 1.0), ("orders", 1, 2.0)])
        assert delay == 0.0
        assert b.reserve([("gateway", 10, 1.0)]) == 0.0
        third, delay = between(b.reserve, [("gateway", 10, 1.0), ("orders", 1, 2.0)])
        assert overlap(third, (first[0] + 2.0, first[1] + 2.0)), (first, third)
        assert PacingLedger(market_db_url, other).reserve([("orders", 1, 2.0)]) == 0.0  # another gateway: free
    finally:
        a.close()
        b.close()


def test_credentials_in_the_gateway_url_stay_out_of_the_ledger(market_db_url: str) -> None:
    ledger = PacingLedger(market_db_url, "https://user:secret@gw.example:5000/v1/api")
    assert ledger.gateway == "https://gw.example:5000/v1/api"
    ledger.reserve([("w", 5, 1.0)])
    ledger.close()
    import psycopg2

    with psycopg2.connect(market_db_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM ops.gateway_pacing WHERE gateway LIKE '%secret%'")
        assert cur.fetchone() == (0,)


def test_a_lost_connection_or_dropped_schema_is_recovered_once(market_db_url: str) -> None:
    ledger = PacingLedger(market_db_url, f"test-reconnect-{time.monotonic_ns()}")
    assert ledger.reserve([("w", 5, 1.0)]) == 0.0
    ledger._conn.close()  # e.g. the database restarted between two requests
    assert ledger.reserve([("w", 5, 1.0)]) == 0.0
    with ledger._conn.cursor() as cur:  # the schema dropped under it (the tests' clean_db does that): re-created
        cur.execute("DROP SCHEMA ops CASCADE")
    assert ledger.reserve([("w", 5, 1.0)]) == 0.0
    assert ledger.reservations == 3
    ledger.close()


def test_an_unreachable_ledger_fails_the_request_instead_of_sending_it_unpaced() -> None:
    import psycopg2

    ledger = PacingLedger("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2", "gw")
    with pytest.raises(psycopg2.OperationalError):
        ledger.reserve([("w", 5, 1.0)])


_CHILD = r"""
import json, sys, time
from include.ibkr.client import IBKRClient
from include.ibkr.errors import RateLimitedError
url, dsn, n, start = sys.argv[1], sys.argv[2] or None, int(sys.argv[3]), float(sys.argv[4])
with IBKRClient(url, pacing_dsn=dsn, retries=0) as client:  # dsn None: this process's own pacing only
    time.sleep(max(0.0, start - time.time()))  # both processes begin together
    sent, refused = [], 0
    for _ in range(n):
        try:
            client.auth_status()
        except RateLimitedError:  # no retry: every 429 counts
            refused += 1
        sent.append(time.time())
print(json.dumps({"first": sent[0], "last": sent[-1], "requests": client._counts["requests"], "refused": refused}))
"""


def _two_processes(simulator: object, dsn: str) -> tuple[list[dict], int]:
    """Two processes sending 15 requests each, started together: their reports and the gateway's 429 count."""
    time.sleep(1.1)  # the simulator's window forgets earlier requests
    httpx.post(f"{simulator.admin_url}/stats/reset", timeout=5).raise_for_status()
    start = time.time() + 3.0
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, simulator.base_url, dsn, "15", str(start)],
                              cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results, httpx.get(f"{simulator.admin_url}/stats", timeout=5).json()["http_429"]


def test_two_processes_keep_the_gateway_rate_together(market_db_url: str, simulator: object) -> None:
    """Two task processes, 15 requests each, started together against the simulator (10 requests/s gateway-wide,
    429 above). Each pacing itself alone, they send their 30 in ~1.5 s and the gateway refuses many (on the real
    gateway: the 10-minute penalty box): 10 of the 30. Through the ledger they spread over three windows, ~2.1 s,
    and the gateway refuses none on an idle machine. On a loaded one a few can still land: the ledger books
    departure slots 50 ms apart beyond each window, and a process the machine stalls for longer than that between
    its slot and its send arrives late, inside the next window (0-2 of 30 in 17 runs with both cores busy, and on
    loaded CI runs; the client retries a 429 after a back-off)."""
    alone, refused_alone = _two_processes(simulator, "")
    assert refused_alone >= 8 and sum(r["refused"] for r in alone) == refused_alone

    results, refused = _two_processes(simulator, market_db_url)
    assert refused <= 3 and sum(r["refused"] for r in results) == refused
    assert [r["requests"] for r in results] == [15, 15]
    spread = max(r["last"] for r in results) - min(r["first"] for r in results)
    assert spread >= 2.0, f"30 requests at 10/s gateway-wide need ~2.1 s, took {spread:.2f} s"


def test_the_hook_paces_through_the_market_database(monkeypatch: pytest.MonkeyPatch, market_db_url: str) -> None:
    from include.ibkr.hook import IBKRHook

    monkeypatch.setenv("IBKR_GATEWAY_URL", "http://127.0.0.1:9/hook-ledger/v1/api")
    monkeypatch.setenv("MARKET_DB_URL", market_db_url)
    with IBKRHook().get_conn() as client:
        assert client.limiter.ledger is not None and client.limiter.ledger.dsn == market_db_url
    monkeypatch.delenv("MARKET_DB_URL")
    with IBKRHook().get_conn() as client:  # no market database (e.g. a notebook): pacing within the process only
        assert client.limiter.ledger is None
