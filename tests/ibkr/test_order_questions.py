"""Order warnings ("reply questions", ibkr-cp-api.md §8.1-B/§8.2) answered by policy, against the simulator:
accepted ids are confirmed, any other question is declined (no order, the cOID is free again), errors of the
reply step say that the gateway had already taken the placement."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from include.config.order_questions import DEFAULT_ACCEPTED_QUESTIONS
from include.ibkr import errors as E
from include.ibkr.client import IBKRClient
from include.ibkr.models import OrderRequest


def admin(sim, path: str, body: dict | None = None) -> dict:
    resp = httpx.post(f"{sim.admin_url}{path}", json=body or {}, timeout=5)
    resp.raise_for_status()
    return resp.json()


def book(sim) -> dict:
    return httpx.get(f"{sim.admin_url}/orders", timeout=5).json()


def hits(sim, prefix: str) -> int:
    by_path = httpx.get(f"{sim.admin_url}/stats", timeout=5).json()["by_path"]
    return sum(n for path, n in by_path.items() if path.startswith(prefix))


def make_client(sim, **kw) -> IBKRClient:
    return IBKRClient(sim.base_url, rate_per_sec=None, endpoint_pacing=False, backoff_initial=0.01,
                      backoff_max=0.05, **kw)


@pytest.fixture
def sim(simulator):
    admin(simulator, "/config", {"rate_limits": False})
    return simulator


@pytest.fixture
def client(sim) -> Iterator[IBKRClient]:
    with make_client(sim) as c:
        c.ensure_session()
        yield c


def _order(coid: str, order_type: str = "LMT") -> OrderRequest:
    price = {"price": 100.0} if order_type == "LMT" else {}
    return OrderRequest(conid=265598, side="BUY", quantity=3, order_type=order_type, tif="DAY", coid=coid,
                        **price)  # type: ignore[arg-type]


def test_a_chain_of_accepted_warnings_is_confirmed_and_the_order_placed(client, sim):
    admin(sim, "/config", {"questions": list(DEFAULT_ACCEPTED_QUESTIONS)})
    ack = client.place_order(_order("q-ok"))
    assert ack.order_id.isdigit() and ack.questions_confirmed == list(DEFAULT_ACCEPTED_QUESTIONS)
    assert [o["cOID"] for o in book(sim)["orders"]] == ["q-ok"] and book(sim)["pending"] == []
    assert hits(sim, "/iserver/reply/") == len(DEFAULT_ACCEPTED_QUESTIONS)


def test_an_unknown_warning_is_declined_and_nothing_is_placed(client, sim):
    admin(sim, "/config", {"questions": ["o163", "o999"]})  # o163 accepted, then a question nobody listed
    with pytest.raises(E.OrderQuestionRefusedError) as caught:
        client.place_order(_order("q-unknown"))
    err = caught.value
    assert isinstance(err, E.OrderRejectedError) and err.message_ids == ["o999"]
    assert "requires confirmation (o999)" in err.question and "BUY 3 AAPL" in err.question
    assert err.question in str(err) and "not on the accepted list" in str(err)
    # Declined at the gateway (confirmed: false -> 400 "order not confirmed"): no order, no open chain.
    assert book(sim) == {"orders": [], "pending": []}
    assert hits(sim, "/iserver/reply/") == 2  # confirm o163, decline o999
    # The simulator frees a declined cOID; with the warning gone the same order goes through.
    admin(sim, "/config", {"questions": []})
    assert client.place_order(_order("q-unknown")).order_id.isdigit()


def test_the_market_order_warning_is_refused_by_default_and_accepted_when_listed(sim):
    # Default simulator questions: a MKT order asks o10151, which is not on the default list.
    with make_client(sim) as default_client:
        default_client.ensure_session()
        with pytest.raises(E.OrderQuestionRefusedError, match="market order"):
            default_client.place_order(_order("q-mkt", "MKT"))
    assert book(sim)["orders"] == []
    with make_client(sim, accepted_questions=["o10151"]) as permissive:
        permissive.ensure_session()
        ack = permissive.place_order(_order("q-mkt", "MKT"))
    assert ack.questions_confirmed == ["o10151"] and len(book(sim)["orders"]) == 1


def test_confirm_false_declines_even_an_accepted_warning(client, sim):
    admin(sim, "/config", {"questions": ["o163"]})
    with pytest.raises(E.OrderQuestionRefusedError, match="confirm=False"):
        client.place_order(_order("q-no"), confirm=False)
    assert book(sim) == {"orders": [], "pending": []}


def test_too_many_questions_declines_the_last_one(client, sim):
    admin(sim, "/config", {"questions": ["o163", "o451"]})
    with pytest.raises(E.OrderNotConfirmedError, match="after 1 confirmations"):
        client.place_order(_order("q-many"), max_replies=1)
    assert book(sim) == {"orders": [], "pending": []}


def test_accepted_ids_are_suppressed_once_per_client_and_others_still_asked(sim):
    admin(sim, "/config", {"questions": ["o163", "o451"]})
    with make_client(sim, suppress_accepted_questions=True) as c:
        c.ensure_session()
        first, second = c.place_order(_order("q-s1")), c.place_order(_order("q-s2"))
        assert first.questions_confirmed == second.questions_confirmed == []  # never asked
        state = httpx.get(f"{sim.admin_url}/state", timeout=5).json()
        assert state["suppressed_questions"] == sorted(DEFAULT_ACCEPTED_QUESTIONS)
        assert hits(sim, "/iserver/questions/suppress") == 1 and hits(sim, "/iserver/reply/") == 0
        admin(sim, "/config", {"questions": ["o163", "o10151"]})  # suppression never covers other ids
        with pytest.raises(E.OrderQuestionRefusedError) as caught:
            c.place_order(_order("q-s3"))
    assert caught.value.message_ids == ["o10151"]
    assert sorted(o["cOID"] for o in book(sim)["orders"]) == ["q-s1", "q-s2"]


def test_an_error_of_the_reply_step_is_marked_after_acceptance(client, sim):
    admin(sim, "/config", {"questions": ["o163"]})
    # The gateway acts on the confirmation, then its answer is replaced by a 400: the order exists.
    admin(sim, "/faults", {"path": r"^/iserver/reply/", "method": "POST", "after": True, "status": 400,
                           "body": {"error": "internal reply state"}})
    with pytest.raises(E.OrderRejectedError) as caught:
        client.place_order(_order("q-lost"))
    assert (caught.value.stage, caught.value.after_acceptance) == ("reply", True)
    assert not isinstance(caught.value, E.OrderQuestionRefusedError)
    assert [o["cOID"] for o in book(sim)["orders"]] == ["q-lost"]
    # A plain 400 on the first POST happened before any question: not after acceptance.
    admin(sim, "/faults", {"path": r"^/iserver/account/[^/]+/orders$", "method": "POST", "status": 400,
                           "body": {"error": "invalid order price fields"}})
    with pytest.raises(E.OrderRejectedError) as first_post:
        client.place_order(_order("q-bad"))
    assert (first_post.value.stage, first_post.value.after_acceptance) == ("place", False)
