"""Faults during submission against the real simulator: a killed order step, lost acknowledgements, 401,
429, 5xx, timeouts, a broken question chain and a concurrent attempt. Whatever happens, the simulator's book
never holds two orders with one cOID, a retry never resubmits what the broker has, and errors say what
happened (symbol, intent id, HTTP status, broker message)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from include.execution import ConcurrentExecutionError, OrderExecutionError, execute_intents, load_events
from include.execution.ledger import connect, ensure_schema, submission_lock
from include.ibkr.client import IBKRClient
from tests.conftest import REPO
from tests.execution.conftest import make_client
from tests.execution.support import (
    admin,
    book,
    clear_faults,
    fault,
    order_posts,
    orders_by_coid,
    plan,
    rows,
    run_ctx,
)

PLACE = r"^/iserver/account/[^/]+/orders$"


def _status(dsn: str, run_id: str) -> dict[str, str]:
    return dict(rows(dsn, "SELECT symbol, status FROM trading.order_intents WHERE run_id = %s", (run_id,)))


def _no_duplicates(sim) -> None:
    counts = orders_by_coid(sim)
    assert not counts or max(counts.values()) == 1, counts


def _fail(plans, run, dsn, broker) -> OrderExecutionError:
    with pytest.raises(OrderExecutionError) as caught:
        execute_intents(plans, run, dsn=dsn, broker=broker)
    return caught.value


def test_killed_mid_submission_then_retried_never_duplicates(clean_db, simulator):
    """The order step dies after its POST reached the gateway and before the ledger heard back."""
    admin(simulator, "/config", {"questions": []})  # pacing stays on: IBKR's real limits for this one
    fault(simulator, path=PLACE, method="POST", after=True, latency_ms=20_000)  # placed, answer held back
    run = run_ctx("kill-1")
    coid = plan("TSLA").intent_id(run)
    args = {"base_url": simulator.base_url, "dsn": clean_db, "run_id": "kill-1", "symbols": ["TSLA", "NVDA"]}
    child = subprocess.Popen([sys.executable, "-m", "tests.execution.child_submit", json.dumps(args)], cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while orders_by_coid(simulator)[coid] != 1:
            assert child.poll() is None and time.monotonic() < deadline, "child ended before its POST landed"
            time.sleep(0.05)
        assert _status(clean_db, "kill-1") == {"TSLA": "submitted", "NVDA": "pending"}
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    posts = order_posts(simulator)
    with IBKRClient(simulator.base_url) as client:  # the retry: default pacing, a fresh brokerage view
        report = execute_intents([plan("TSLA"), plan("NVDA")], run_ctx("kill-1", try_number=2), dsn=clean_db,
                                 broker=client)
    assert report.reconciled == [coid] and report.submitted == [plan("NVDA").intent_id(run)]
    assert order_posts(simulator) == posts + 1  # only NVDA was sent
    assert orders_by_coid(simulator) == {coid: 1, plan("NVDA").intent_id(run): 1}
    assert _status(clean_db, "kill-1") == {"TSLA": "filled", "NVDA": "filled"}
    conn = connect(clean_db)
    events = load_events(conn, coid)
    conn.close()
    assert [e["status"] for e in events] == ["pending", "submitted", "filled"]
    assert "not resubmitted" in events[-1]["message"] and events[-1]["try_number"] == 2


@pytest.mark.parametrize("where", ["placement", "reply"])
def test_ack_lost_after_the_broker_took_the_order(clean_db, sim, client, where):
    if where == "reply":
        admin(sim, "/config", {"questions": ["o163"]})  # the order is created by the confirmation
    path = PLACE if where == "placement" else r"^/iserver/reply/"
    fault(sim, path=path, method="POST", after=True, status=503)
    run = run_ctx(f"lost-{where}")
    err = _fail([plan("TSLA"), plan("NVDA")], run, clean_db, client)
    text = str(err)
    assert f"BUY TSLA intent {plan('TSLA').intent_id(run)}: GatewayServerError (HTTP 503" in text
    assert "Service Unavailable" in text and "ledger status 'unknown'" in text
    assert "BUY NVDA" in text and "NotAttempted" in text and "stopped at the first gateway-wide problem" in text
    assert _status(clean_db, run.run_id) == {"TSLA": "unknown", "NVDA": "pending"}
    assert len(book(sim)["orders"]) == 1  # the gateway did place TSLA
    posts = order_posts(sim)
    with make_client(sim) as retry_client:
        report = execute_intents([plan("TSLA"), plan("NVDA")], run_ctx(run.run_id, try_number=2), dsn=clean_db,
                                 broker=retry_client)
    assert report.reconciled == [plan("TSLA").intent_id(run)] and len(report.submitted) == 1
    assert order_posts(sim) == posts + 1
    assert sorted(orders_by_coid(sim).values()) == [1, 1]
    assert _status(clean_db, run.run_id) == {"TSLA": "filled", "NVDA": "filled"}


def test_5xx_before_placement_is_reconciled_then_resubmitted_once(clean_db, sim, client):
    fault(sim, path=PLACE, method="POST", status=500, body={"error": "internal error"})
    run = run_ctx("5xx-1")
    err = _fail([plan("TSLA")], run, clean_db, client)
    assert "HTTP 500" in str(err) and "internal error" in str(err) and err.failures[0].http_status == 500
    assert _status(clean_db, "5xx-1") == {"TSLA": "unknown"} and book(sim)["orders"] == []  # the client can't tell
    report = execute_intents([plan("TSLA")], run_ctx("5xx-1", try_number=2), dsn=clean_db, broker=client)
    assert report.reconciled == [] and report.submitted == [plan("TSLA").intent_id(run)]
    assert orders_by_coid(sim) == {plan("TSLA").intent_id(run): 1}
    events = rows(clean_db, "SELECT status, kind, message FROM trading.order_events ORDER BY event_id")
    assert [e[:2] for e in events] == [("pending", "status"), ("submitted", "status"), ("unknown", "error"),
                                       ("submitted", "status"), ("acknowledged", "status"), ("filled", "fill")]
    assert "resubmitting: the broker's live orders and executions show no order" in events[3][2]


def test_401_during_submission_leaves_the_intent_pending(clean_db, sim, client):
    client.ensure_session()
    fault(sim, path=PLACE, method="POST", status=401, times=-1)
    run = run_ctx("401-1")
    err = _fail([plan("TSLA"), plan("NVDA")], run, clean_db, client)
    first = err.failures[0]
    assert (first.symbol, first.http_status, first.error_type) == ("TSLA", 401, "NotAuthenticatedError")
    assert "log in at the gateway" in str(err) and "never reached the broker" in str(err)
    assert _status(clean_db, "401-1") == {"TSLA": "pending", "NVDA": "pending"}
    assert order_posts(sim) == 1 and book(sim)["orders"] == []  # stopped after the first 401
    clear_faults(sim)
    report = execute_intents([plan("TSLA"), plan("NVDA")], run_ctx("401-1", try_number=2), dsn=clean_db,
                             broker=client)
    assert len(report.submitted) == 2 and sorted(orders_by_coid(sim).values()) == [1, 1]


def test_429_is_retried_by_the_client_and_reported_when_it_persists(clean_db, sim, client):
    fault(sim, path=PLACE, method="POST", status=429, times=2)  # the client backs off and gets through
    report = execute_intents([plan("TSLA")], run_ctx("429-1"), dsn=clean_db, broker=client)
    assert [i.status for i in report.intents] == ["filled"] and client.stats()["retries"] == 2
    fault(sim, path=PLACE, method="POST", status=429, times=-1)
    run = run_ctx("429-2")
    err = _fail([plan("NVDA")], run, clean_db, client)
    assert "HTTP 429" in str(err) and "pacing limit" in str(err) and err.failures[0].ledger_status == "pending"
    clear_faults(sim)
    execute_intents([plan("NVDA")], run_ctx("429-2", try_number=2), dsn=clean_db, broker=client)
    assert orders_by_coid(sim) == {plan("TSLA").intent_id(run_ctx("429-1")): 1, plan("NVDA").intent_id(run): 1}


def test_timeout_after_placement_is_reconciled_not_resubmitted(clean_db, sim):
    fault(sim, path=PLACE, method="POST", after=True, latency_ms=2_500)  # placed, answer late
    run = run_ctx("timeout-1")
    with make_client(sim, timeout=1.0) as impatient:
        err = _fail([plan("TSLA")], run, clean_db, impatient)
    assert "GatewayUnreachableError" in str(err) and "ReadTimeout" in str(err) and "may have reached IBKR" in str(err)
    assert _status(clean_db, "timeout-1") == {"TSLA": "unknown"}
    posts = order_posts(sim)
    with make_client(sim) as client:
        report = execute_intents([plan("TSLA")], run_ctx("timeout-1", try_number=2), dsn=clean_db, broker=client)
    assert report.reconciled == [plan("TSLA").intent_id(run)] and order_posts(sim) == posts
    assert orders_by_coid(sim) == {plan("TSLA").intent_id(run): 1}


def test_broken_question_chain_is_not_resubmitted_under_the_same_cOID(clean_db, sim, client):
    admin(sim, "/config", {"questions": ["o163", "o451"]})
    fault(sim, path=r"^/iserver/reply/", method="POST", status=401)  # chain broken after the first question
    run = run_ctx("chain-1")
    coid = plan("TSLA").intent_id(run)
    err = _fail([plan("TSLA")], run, clean_db, client)
    # The gateway holds the placement (it asked): an error of the reply step leaves the intent unknown.
    assert err.failures[0].http_status == 401 and _status(clean_db, "chain-1") == {"TSLA": "unknown"}
    # IBKR registered the cOID with the unanswered question: the retry looks, finds no order, gets the
    # duplicate-cOID refusal and stops there instead of inventing a new id.
    err = _fail([plan("TSLA")], run_ctx("chain-1", try_number=2), clean_db, client)
    assert "is already registered, but neither its live orders nor its executions show it" in str(err)
    assert err.failures[0].error_type == "DuplicateOrderError" and err.failures[0].ledger_status == "failed"
    assert book(sim)["orders"] == [] and [p["cOIDs"] for p in book(sim)["pending"]] == [[coid]]
    posts = order_posts(sim)
    with pytest.raises(OrderExecutionError, match="ended failed in an earlier attempt") as again:
        execute_intents([plan("TSLA")], run_ctx("chain-1", try_number=3), dsn=clean_db, broker=client)
    assert again.value.report.skipped == [coid] and again.value.report.intents[0].status == "failed"  # not resent
    assert order_posts(sim) == posts


def test_4xx_on_the_reply_after_the_gateway_took_the_order_is_unknown_then_reconciled(clean_db, sim, client):
    admin(sim, "/config", {"questions": ["o163"]})  # accepted by policy: the confirmation creates the order
    fault(sim, path=r"^/iserver/reply/", method="POST", after=True, status=400,
          body={"error": "Order couldn't be confirmed"})  # the gateway acted, then answered 400
    run = run_ctx("reply-400")
    tsla = plan("TSLA").intent_id(run)
    err = _fail([plan("TSLA"), plan("NVDA")], run, clean_db, client)
    first = err.failures[0]
    assert (first.symbol, first.http_status, first.error_type, first.ledger_status) == (
        "TSLA", 400, "OrderRejectedError", "unknown")
    assert "couldn't be confirmed" in str(err) and "NotAttempted" in str(err)  # stopped: it may be live
    assert _status(clean_db, run.run_id) == {"TSLA": "unknown", "NVDA": "pending"}  # never "rejected"
    assert orders_by_coid(sim) == {tsla: 1}  # ... because it is in the broker's book
    posts = order_posts(sim)
    with make_client(sim) as retry_client:
        report = execute_intents([plan("TSLA"), plan("NVDA")], run_ctx(run.run_id, try_number=2), dsn=clean_db,
                                 broker=retry_client)
    assert report.reconciled == [tsla] and report.submitted == [plan("NVDA").intent_id(run)]
    assert order_posts(sim) == posts + 1  # only NVDA was sent
    assert orders_by_coid(sim) == {tsla: 1, plan("NVDA").intent_id(run): 1}
    assert _status(clean_db, run.run_id) == {"TSLA": "filled", "NVDA": "filled"}
    conn = connect(clean_db)
    events = load_events(conn, tsla)
    conn.close()
    assert [e["status"] for e in events] == ["pending", "submitted", "unknown", "filled"]
    assert "not resubmitted" in events[-1]["message"]


def test_malformed_answer_to_the_placement_is_unknown_then_reconciled(clean_db, sim, client):
    fault(sim, path=PLACE, method="POST", after=True, malformed=True)  # placed, answer unreadable
    run = run_ctx("malformed-1")
    err = _fail([plan("TSLA")], run, clean_db, client)
    assert err.failures[0].error_type == "MalformedResponseError" and err.failures[0].ledger_status == "unknown"
    assert _status(clean_db, run.run_id) == {"TSLA": "unknown"}
    posts = order_posts(sim)
    report = execute_intents([plan("TSLA")], run_ctx(run.run_id, try_number=2), dsn=clean_db, broker=client)
    assert report.reconciled == [plan("TSLA").intent_id(run)] and order_posts(sim) == posts
    assert orders_by_coid(sim) == {plan("TSLA").intent_id(run): 1}
    assert _status(clean_db, run.run_id) == {"TSLA": "filled"}


def test_order_questions_are_answered_by_policy(clean_db, sim, client):
    admin(sim, "/config", {"questions": ["o163", "o451"]})  # both on the default accepted list
    report = execute_intents([plan("TSLA")], run_ctx("policy-1"), dsn=clean_db, broker=client)
    assert [i.status for i in report.intents] == ["filled"]
    acked = rows(clean_db, "SELECT message FROM trading.order_events WHERE status = 'acknowledged'")
    assert [m for (m,) in acked if "confirmed o163, o451" in m]
    # A question nobody listed: declined, no order at IBKR, the intent rejected with the question's text.
    admin(sim, "/config", {"questions": ["o999"]})
    run = run_ctx("policy-2")
    plans = [plan("TSLA", strategy_id=2), plan("NVDA", strategy_id=2)]
    posts = order_posts(sim)
    err = _fail(plans, run, clean_db, client)
    assert [f.error_type for f in err.failures] == ["OrderQuestionRefusedError"] * 2  # the batch went on
    assert order_posts(sim) == posts + 2
    assert _status(clean_db, run.run_id) == {"TSLA": "rejected", "NVDA": "rejected"}
    errors = rows(clean_db, "SELECT symbol, last_error FROM trading.order_intents WHERE run_id = %s", (run.run_id,))
    for symbol, last_error in errors:
        assert f"BUY 3 {symbol}" in last_error and "requires confirmation (o999)" in last_error, last_error
        assert "not on the accepted list" in last_error
    assert {p.intent_id(run) for p in plans}.isdisjoint(orders_by_coid(sim)) and book(sim)["pending"] == []


def test_broker_4xx_rejection_is_final_and_the_batch_goes_on(clean_db, sim, client):
    fault(sim, path=PLACE, method="POST", status=400, body={"error": "Order price is outside the price band"})
    run = run_ctx("reject-1")
    err = _fail([plan("TSLA"), plan("NVDA")], run, clean_db, client)
    assert "OrderRejectedError (HTTP 400" in str(err) and "outside the price band" in str(err)
    assert _status(clean_db, "reject-1") == {"TSLA": "rejected", "NVDA": "filled"}
    posts = order_posts(sim)
    with pytest.raises(OrderExecutionError, match="ended rejected in an earlier attempt") as again:
        execute_intents([plan("TSLA"), plan("NVDA")], run_ctx("reject-1", try_number=2), dsn=clean_db,
                        broker=client)  # the retry fails too: a rejection never turns green
    assert not again.value.retryable and len(again.value.report.skipped) == 2 and order_posts(sim) == posts


def test_a_concurrent_attempt_in_the_same_mode_waits_for_the_lock(clean_db, sim, client):
    holder = connect(clean_db)
    try:
        ensure_schema(holder)
        with submission_lock(holder, "paper"), pytest.raises(ConcurrentExecutionError, match="paper orders"):
            execute_intents([plan("TSLA")], run_ctx("lock-1"), dsn=clean_db, broker=client, lock_timeout_s=0.3)
    finally:
        holder.close()
    assert book(sim)["orders"] == [] and rows(clean_db, "SELECT count(*) FROM trading.order_intents") == [(0,)]
    execute_intents([plan("TSLA")], run_ctx("lock-1"), dsn=clean_db, broker=client)
    _no_duplicates(sim)
