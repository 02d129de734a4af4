"""Portfolio (§7) and order (§8) endpoints of ``IBKRClient``, kept apart to keep modules small."""

from __future__ import annotations

import logging
import threading
import time as _time
from collections.abc import Sequence
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

    # ------------------------------------------------------------ orders (§8)
    def place_order(self, order: OrderRequest, *, confirm: bool = True, max_replies: int = 20) -> OrderAck:
        acct = order.account_id or self.account_id
        payload = {**order.to_payload(), "acctId": acct}
        endpoint = f"/iserver/account/{acct}/orders"
        confirmed: list[str] = []
        replies = 0
        # §8.1: place the next order only after the previous one is fully acknowledged.
        with self._order_lock:
            raw = self._request("POST", endpoint, json={"orders": [payload]}, idempotent=False)
            result = PO.parse_order_submission(raw, endpoint)
            # §8.2: questions chain, one per response, each with a new reply id (ibind allows 20).
            while isinstance(result, OrderQuestion):
                if not confirm:
                    raise E.OrderRejectedError(
                        f"order not sent: IBKR asks for confirmation ({' | '.join(result.messages)}) and "
                        "confirm=False", endpoint=endpoint,
                    )  # fmt: skip
                if replies >= max_replies:
                    raise E.OrderNotConfirmedError(
                        f"IBKR still asked questions after {max_replies} confirmations ({confirmed}); "
                        "order status unknown: check live orders by cOID", endpoint=endpoint,
                    )  # fmt: skip
                log.info("confirming IBKR order question %s: %s", result.message_ids, result.messages)
                confirmed.extend(result.message_ids or [result.reply_id])
                result = self.reply(result.reply_id, True)
                replies += 1
        return result.model_copy(update={"coid": order.coid or result.coid, "questions_confirmed": confirmed})

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
        if (isinstance(payload, dict) and payload.get("snapshot") is False) or (first and empty):
            _time.sleep(preflight_wait_s)  # §8.3 pre-flight: the first call may come back empty
            payload = self._request("GET", "/iserver/account/orders", params=params)
        return PO.parse_live_orders(payload)

    def cancel_order(self, order_id: int | str, account_id: str | None = None) -> CancelAck:
        endpoint = f"/iserver/account/{account_id or self.account_id}/order/{order_id}"
        return PO.parse_cancel(self._request("DELETE", endpoint, idempotent=False), endpoint)

    def trades(self, days: int = 1) -> list[Trade]:
        if not 1 <= days <= 7:
            raise ValueError("IBKR serves at most 7 days of executions (§8.9)")
        return PO.parse_trades(self._request("GET", "/iserver/account/trades", params={"days": days}))
