"""Portfolio (§7) and order (§8) endpoints of ``IBKRClient``, kept apart to keep modules small."""

from __future__ import annotations

import logging
import threading
import time as _time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from include.ibkr import errors as E
from include.ibkr import parsing as P
from include.ibkr.models import (
    AccountSummary,
    CancelAck,
    LedgerEntry,
    LiveOrder,
    OrderAck,
    OrderQuestion,
    OrderRequest,
    OrderStatus,
    Position,
    Trade,
)
from include.ibkr.parsing import account as PA
from include.ibkr.parsing import orders as PO

log = logging.getLogger("include.ibkr.client")


class TradingMixin:
    """Needs the request core, locks and ``account_id`` of ``IBKRClient``."""

    _lock: threading.RLock
    _order_lock: threading.Lock
    _portfolio_primed: bool
    _live_orders_seen: bool
    accepted_questions: frozenset[str]
    _suppress_accepted: bool
    _questions_suppressed: bool

    if TYPE_CHECKING:

        @property
        def account_id(self) -> str: ...

        def _request(
            self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None,
            idempotent: bool = True,
        ) -> Any: ...  # fmt: skip

    # ------------------------------------------------------------ portfolio (§7)
    def portfolio_accounts(self) -> list[dict[str, Any]]:
        payload = P.expect_list(self._request("GET", "/portfolio/accounts"), "/portfolio/accounts")
        self._portfolio_primed = True
        return payload

    def _prime_portfolio(self) -> None:
        if not self._portfolio_primed:  # §7.2: /portfolio/accounts must come first
            self.portfolio_accounts()

    def positions(self, account_id: str | None = None) -> list[Position]:
        acct = account_id or self.account_id
        self._prime_portfolio()
        out: list[Position] = []
        for page in range(1000):
            endpoint = f"/portfolio/{acct}/positions/{page}"
            payload = P.expect_list(self._request("GET", endpoint), endpoint)
            out.extend(PA.parse_positions(payload, endpoint))
            # Page size is 100 or 30 depending on the build (§7.3): trust pageSize, else read to empty.
            size = payload[0].get("pageSize") if payload and isinstance(payload[0], dict) else None
            if not payload or (isinstance(size, int) and len(payload) < size):
                break
        return out

    def account_summary(self) -> AccountSummary:
        self._prime_portfolio()
        endpoint = f"/portfolio/{self.account_id}/summary"
        return PA.parse_account_summary(self._request("GET", endpoint), endpoint)

    def ledger(self) -> list[LedgerEntry]:
        self._prime_portfolio()
        endpoint = f"/portfolio/{self.account_id}/ledger"
        return PA.parse_ledger(self._request("GET", endpoint), endpoint)

    # ------------------------------------------------------------ order questions (§8.1-B, §8.2)
    def set_question_policy(self, accepted: Iterable[str] | None, *, suppress: bool = False) -> None:
        """Confirm only reply questions whose message ids are all in ``accepted`` (None: the project's defaults,
        include/config/order_questions.py). ``suppress``: also ask the gateway, once per client, not to ask
        those ids at all (§8.2); off by default, because a confirmed id is recorded with the order."""
        if accepted is None:
            from include.config.order_questions import DEFAULT_ACCEPTED_QUESTIONS

            accepted = DEFAULT_ACCEPTED_QUESTIONS
        self.accepted_questions = frozenset(i.strip().lower() for i in accepted if i.strip())
        self._suppress_accepted = suppress
        self._questions_suppressed = False

    def _suppress_once(self) -> None:
        if not self._suppress_accepted or self._questions_suppressed or not self.accepted_questions:
            return
        try:
            self.suppress_questions(sorted(self.accepted_questions)[:51])
        except E.IBKRError as exc:  # only an optimisation: the same ids are still confirmed in the chain
            log.warning("could not suppress IBKR questions %s (%s); confirming them per order instead",
                        sorted(self.accepted_questions), exc)
            return
        self._questions_suppressed = True

    # ------------------------------------------------------------ orders (§8)
    def place_order(self, order: OrderRequest, *, confirm: bool = True, max_replies: int = 20) -> OrderAck:
        """Place one order and walk its reply-question chain: a question is confirmed only if ``confirm`` and
        all its message ids are accepted (``accepted_questions``); otherwise the chain is declined and
        ``OrderQuestionRefusedError`` raised (no order). An error of the reply step itself carries
        ``stage="reply"`` and ``after_acceptance=True``: the order may exist, reconcile by cOID."""
        acct = order.account_id or self.account_id
        payload = {**order.to_payload(), "acctId": acct}
        endpoint = f"/iserver/account/{acct}/orders"
        confirmed: list[str] = []
        replies = 0
        # §8.1: place the next order only after the previous one is fully acknowledged.
        with self._order_lock:
            self._suppress_once()
            try:
                raw = self._request("POST", endpoint, json={"orders": [payload]}, idempotent=False)
                result = PO.parse_order_submission(raw, endpoint)
            except E.IBKRError as exc:
                exc.stage = "place"
                raise
            # §8.2: questions chain, one per response, each with a new reply id (ibind allows 20).
            while isinstance(result, OrderQuestion):
                refused = [m for m in result.message_ids if m.lower() not in self.accepted_questions]
                if not confirm:
                    self._decline(result, endpoint, "the caller placed the order with confirm=False")
                if refused or not result.message_ids:
                    self._decline(result, endpoint)
                if replies >= max_replies:
                    self._decline(result, endpoint, quiet=True)
                    raise E.OrderNotConfirmedError(
                        f"IBKR still asked questions after {max_replies} confirmations ({confirmed}); the last "
                        "one was declined, so no order was placed", endpoint=endpoint,
                    )  # fmt: skip
                log.info("confirming IBKR order question %s (accepted by policy): %s", result.message_ids,
                         result.messages)
                confirmed.extend(result.message_ids)
                try:
                    result = self.reply(result.reply_id, True)
                except E.IBKRError as exc:
                    # The gateway holds the placement (it asked): this answer may be lost after IBKR acted.
                    exc.stage, exc.after_acceptance = "reply", True
                    raise
                replies += 1
        return result.model_copy(update={"coid": order.coid or result.coid, "questions_confirmed": confirmed})

    def _decline(self, question: OrderQuestion, endpoint: str, why: str | None = None, *,
                 quiet: bool = False) -> None:
        """Answer ``{"confirmed": false}`` (§8.2, IBKR answers 400 "order not confirmed"); raise
        ``OrderQuestionRefusedError`` unless ``quiet``."""
        text = " | ".join(" ".join(m.split()) for m in question.messages)
        note = ""
        try:
            answer = self.reply(question.reply_id, False)
        except E.OrderNotConfirmedError:
            answer = None  # the documented answer to a decline
        except E.IBKRError as exc:  # no order without a confirmation: the open question just expires
            log.warning("declining IBKR question %s failed (%s)", question.reply_id, exc)
            answer, note = None, f" (declining it failed: {exc.message}; the open question expires at IBKR)"
        if isinstance(answer, OrderAck):
            err = E.MalformedResponseError(
                f"IBKR answered the declined question {question.message_ids} with order {answer.order_id}: the "
                "order may exist, check live orders by cOID", endpoint=f"/iserver/reply/{question.reply_id}",
            )  # fmt: skip
            err.stage, err.after_acceptance = "reply", True
            raise err
        log.warning("declined IBKR order question %s: %s", question.message_ids, text)
        if not quiet:
            raise E.OrderQuestionRefusedError(text, question.message_ids, question.reply_id, why=why, note=note,
                                              endpoint=endpoint)

    def reply(self, reply_id: str, confirmed: bool = True) -> OrderAck | OrderQuestion:
        endpoint = f"/iserver/reply/{reply_id}"
        raw = self._request("POST", endpoint, json={"confirmed": confirmed}, idempotent=False)
        return PO.parse_order_submission(raw, endpoint)

    def suppress_questions(self, message_ids: Sequence[str]) -> Any:
        if len(message_ids) > 51:
            raise ValueError("IBKR suppresses at most 51 message ids per call (§8.2)")
        return self._request("POST", "/iserver/questions/suppress", json={"messageIds": list(message_ids)})

    def order_status(self, order_id: int | str) -> OrderStatus:
        endpoint = f"/iserver/account/order/status/{order_id}"
        return PO.parse_order_status(self._request("GET", endpoint), endpoint)

    def live_orders(self, *, force: bool = True, preflight_wait_s: float = 1.0) -> list[LiveOrder]:
        params = {"force": "true"} if force else None
        payload = self._request("GET", "/iserver/account/orders", params=params)
        with self._lock:
            first, self._live_orders_seen = not self._live_orders_seen, True
        empty = not (payload.get("orders") if isinstance(payload, dict) else payload)
        complete = payload.get("snapshot") if isinstance(payload, dict) else None  # true: nothing is held back
        if complete is False or (complete is None and first and empty):
            _time.sleep(preflight_wait_s)  # §8.3 pre-flight: the first call may come back empty
            payload = self._request("GET", "/iserver/account/orders", params=params)
        return PO.parse_live_orders(payload)

    def warm_live_orders(self) -> bool:
        """One live-orders call and no second (§8.3 pre-flight of a new brokerage session); True if the feed was
        already warm (a complete snapshot)."""
        payload = self._request("GET", "/iserver/account/orders")
        with self._lock:
            self._live_orders_seen = True
        return isinstance(payload, dict) and payload.get("snapshot") is True

    def cancel_order(self, order_id: int | str, account_id: str | None = None) -> CancelAck:
        endpoint = f"/iserver/account/{account_id or self.account_id}/order/{order_id}"
        return PO.parse_cancel(self._request("DELETE", endpoint, idempotent=False), endpoint)

    def trades(self, days: int = 1) -> list[Trade]:
        if not 1 <= days <= 7:
            raise ValueError("IBKR serves at most 7 days of executions (§8.9)")
        return PO.parse_trades(self._request("GET", "/iserver/account/trades", params={"days": days}))
