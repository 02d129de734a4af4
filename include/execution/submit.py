"""Sending one intent: ``submitted`` is committed before the POST, the acknowledgement after it; a failed
POST is classified by what it proves (never sent -> ``pending``, maybe taken by the gateway -> ``unknown``,
refused -> ``rejected``/``failed``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from include.execution import ledger
from include.execution.broker import Broker, ledger_status
from include.execution.errors import IntentFailure
from include.execution.models import FAILED, PENDING, REJECTED, SUBMITTED, UNKNOWN, IntentRecord

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

    from include.ibkr.errors import IBKRError
    from include.ibkr.models import OrderRequest


def order_request(intent: IntentRecord) -> OrderRequest:
    from include.ibkr.models import OrderRequest

    if intent.conid is None:
        raise ValueError(f"{intent.describe()} has no conid")
    return OrderRequest(
        conid=intent.conid, side=intent.side, quantity=intent.quantity, order_type=intent.order_type,
        tif=intent.tif, price=intent.limit_price, coid=intent.coid, account_id=intent.account_id,
    )  # type: ignore[arg-type]  # fmt: skip


def submit_one(
    conn: PgConnection, broker: Broker, intent: IntentRecord, try_number: int, *, resubmission: bool = False,
    claimed: bool = False,
) -> IntentRecord:
    """POST one order (the client confirms the reply-question chain); errors propagate with the row left
    ``submitted``, which is the truth until the caller classifies the error. ``claimed``: the caller already
    moved the row to ``submitted`` (re-checked in the same transaction)."""
    request = order_request(intent)
    if not claimed:
        why = ("resubmitting: the broker's live orders and executions show no order with this cOID"
               if resubmission else "sending")
        intent = ledger.transition(conn, intent, SUBMITTED, try_number=try_number,
                                   message=f"{why} (cOID {intent.coid})")
    ack = broker.place_order(request)
    confirmed = f"; confirmed {', '.join(ack.questions_confirmed)}" if ack.questions_confirmed else ""
    return ledger.transition(
        conn, intent, ledger_status(ack.order_status, 0.0, intent.quantity), try_number=try_number,
        message=f"acknowledged as broker order {ack.order_id} ({ack.order_status}){confirmed}",
        payload=ack.model_dump(mode="json"), broker_order_id=ack.order_id, broker_status=ack.order_status,
        last_error=None,
    )  # fmt: skip


def classify(exc: IBKRError) -> tuple[str, bool]:
    """(ledger status, stop the batch) for a failed placement, from what the error proves about the order."""
    import httpx

    from include.ibkr import errors as E

    if isinstance(exc, E.OrderQuestionRefusedError):
        # A warning outside the accepted list: the client answered "no", so IBKR holds no order for this one.
        return REJECTED, False
    if exc.after_acceptance:
        # The gateway had taken the placement (it asked a question) when this error came, whatever its kind (a 4xx,
        # 401, 5xx, a lost or malformed answer to the reply): the order may be live. Never "rejected"; stop, and a
        # retry matches it by cOID before anything is resent.
        return UNKNOWN, True
    # Refused at the gateway before IBKR saw the order (401, no bridge, competing session, not primed, 429 after
    # the client's own retries): never placed, and every following order would hit the same wall.
    if isinstance(exc, E.NotAuthenticatedError | E.NoBridgeError | E.CompetingSessionError | E.NotPrimedError
                  | E.RateLimitedError):
        return PENDING, True
    if isinstance(exc, E.GatewayUnreachableError):
        unsent = isinstance(exc.__cause__, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        return (PENDING if unsent else UNKNOWN), True  # a read timeout: the answer was lost, maybe after IBKR acted
    if isinstance(exc, E.OrderNotConfirmedError):
        # The client gave up on the question chain (too many questions, the last one declined): no order, but the
        # cOID is registered at IBKR, so the same id cannot simply be sent again.
        return FAILED, False
    if isinstance(exc, E.OrderRejectedError | E.BadRequestError | E.UnknownSymbolError):
        return REJECTED, False  # a 4xx on the first POST, before any question or order id: refused
    # 5xx, malformed answers, anything else: the order may exist. Stop; a retry reconciles by cOID first.
    return UNKNOWN, True


def failure_of(intent: IntentRecord, exc: IBKRError, message: str | None = None) -> IntentFailure:
    text = message or exc.message
    said = _broker_text(exc.body)
    if said and said not in text:
        text += f" (broker said: {said[:200]!r})"
    return IntentFailure(
        symbol=intent.symbol, side=intent.side, intent_id=intent.intent_id, ledger_status=intent.status,
        error_type=type(exc).__name__, message=text, http_status=exc.status_code, endpoint=exc.endpoint,
    )


def _broker_text(body: str | None) -> str | None:
    """The ``error`` text of an ``{"error": ...}`` body, else the raw body."""
    import json

    if not body or not body.strip():
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return body.strip()
    return str(parsed["error"]) if isinstance(parsed, dict) and "error" in parsed else body.strip()
