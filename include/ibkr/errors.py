"""Typed errors for the IBKR Client Portal Web API. Every message says what happened and what to do."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

_BODY_LIMIT = 500


def _truncate(body: str | None) -> str | None:
    if body is None or len(body) <= _BODY_LIMIT:
        return body
    return body[:_BODY_LIMIT] + "...[truncated]"


def _restore(cls: type[IBKRError], state: dict[str, Any]) -> IBKRError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message"))
    err.__dict__.update(state)
    return err


class IBKRError(Exception):
    """Base class; ``endpoint``, ``status_code`` and ``body`` (first ~500 chars) give the context.

    ``place_order`` marks an error of its reply step (§8.2) with ``stage = "reply"`` and
    ``after_acceptance = True``: the gateway had already taken the placement (it answered with a question),
    so an order may exist unless the error itself proves otherwise. Callers reconcile by cOID, never resend.
    """

    default_message = "IBKR Client Portal API error"
    stage: str | None = None  # "place" (the first POST) or "reply" (the confirmation chain); None elsewhere
    after_acceptance: bool = False

    def __init__(
        self,
        message: str | None = None,
        *,
        endpoint: str | None = None,
        status_code: int | None = None,
        body: str | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.endpoint = mask_account_ids(endpoint) if endpoint else endpoint
        self.status_code = status_code
        self.body = _truncate(body)
        super().__init__(self.message)

    def __str__(self) -> str:
        where = [w for w in (self.endpoint, f"HTTP {self.status_code}" if self.status_code else None) if w]
        return f"{self.message} [{', '.join(where)}]" if where else self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take different positional args; rebuild from state so errors survive pickling.
        return _restore, (type(self), dict(self.__dict__))


_ACCOUNT_IN_PATH = re.compile(r"/(U|DU|F|DF|I)(\d+)(\d{3})(?=/|$|\?)")


def mask_account_ids(path: str) -> str:
    """``/iserver/account/DU1234567/orders`` -> ``/iserver/account/DU…567/orders``: request paths carry the account
    id; logs, errors (and through them the ledger, MLflow and alerts) need only enough to tell accounts apart."""
    return _ACCOUNT_IN_PATH.sub(lambda m: f"/{m.group(1)}…{m.group(3)}", path)


class GatewayUnreachableError(IBKRError):
    def __init__(self, url: str, reason: str, *, message: str | None = None, **ctx: Any) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            message
            or f"IBKR gateway at {url} is unreachable ({reason}). The Client Portal Gateway must be "
            "running and reachable from this host; production code never falls back to simulated data.",
            **ctx,
        )


class NotAuthenticatedError(IBKRError):
    default_message = (
        "no gateway session: log in at the gateway (open its URL in a browser on the gateway host), "
        "then retry"
    )


class NoBridgeError(IBKRError):
    default_message = (
        "brokerage session not started (gateway says 'no bridge'/'Init session first'): log in again at "
        "the gateway, or call /iserver/auth/ssodh/init, then retry"
    )


class CompetingSessionError(IBKRError):
    default_message = (
        "another IBKR session (TWS, IBKR Mobile or Client Portal) holds the brokerage session for this "
        "user: log out there, or log in again at the gateway to take the session over"
    )


class NotPrimedError(IBKRError):
    default_message = (
        "gateway session is not primed ('Please query /accounts first', typical after the nightly reset): "
        "call /iserver/accounts, then retry"
    )


class RateLimitedError(IBKRError):
    default_message = (
        "IBKR pacing limit exceeded (HTTP 429) even after backing off: slow down; repeat offenders are put "
        "in a 10-minute penalty box"
    )


class GatewayServerError(IBKRError):
    default_message = (
        "gateway/IBKR server error: IBKR may be restarting (nightly reset ~01:00 ET, weekend maintenance); "
        "retry later. If this was an order submission, check live orders by cOID before resubmitting"
    )


class MalformedResponseError(IBKRError):
    default_message = "the gateway sent a response this client cannot parse"


class NoDataError(IBKRError):
    default_message = "IBKR has no data for this request ('No data.')"


class UnknownSymbolError(IBKRError):
    def __init__(self, symbol: str, reason: str | None = None, **ctx: Any) -> None:
        self.symbol = symbol
        detail = f": {reason}" if reason else ""
        super().__init__(
            f"unknown symbol {symbol!r}: IBKR has no matching US stock contract{detail}; check the ticker",
            **ctx,
        )


class InvalidBarError(IBKRError):
    def __init__(self, symbol: str, session_date: date | None, reason: str, **ctx: Any) -> None:
        self.symbol = symbol
        self.session_date = session_date
        self.reason = reason
        when = session_date.isoformat() if session_date else "an unknown date"
        super().__init__(
            f"invalid daily bar for {symbol} on {when}: {reason}; the whole response was rejected and "
            "nothing was stored",
            **ctx,
        )


class DuplicateOrderError(IBKRError):
    def __init__(self, coid: str, **ctx: Any) -> None:
        self.coid = coid
        super().__init__(
            f"order rejected: client order id (cOID) {coid!r} was already used in the last 24 h (IBKR: "
            "'Local order ID=... is already registered'). The order probably exists: check live orders "
            "before resubmitting",
            **ctx,
        )


class OrderRejectedError(IBKRError):
    default_message = "order rejected by IBKR"


class OrderQuestionRefusedError(OrderRejectedError):
    """A reply question (§8.1-B) whose message ids are not all on the accepted list: the client answered
    ``{"confirmed": false}``, so IBKR holds no order. ``question`` is its text, ``message_ids`` its ids."""

    def __init__(self, question: str, message_ids: list[str], reply_id: str, *, why: str | None = None,
                 note: str = "", **ctx: Any) -> None:
        self.question = question
        self.message_ids = list(message_ids)
        self.reply_id = reply_id
        ids = ", ".join(self.message_ids) or "no message id"
        why = why or ("it is not on the accepted list (IBKR_ACCEPTED_QUESTIONS; add an id only if that warning "
                      "is safe for every order, docs/order-questions.md)")
        super().__init__(
            f"order not placed: IBKR asked {question!r} ({ids}) and the client declined it{note}: {why}", **ctx
        )


class OrderNotConfirmedError(IBKRError):
    default_message = (
        "order not confirmed: a warning question was declined or expired, so nothing was submitted"
    )


class BadRequestError(IBKRError):
    default_message = "IBKR rejected the request as invalid"
