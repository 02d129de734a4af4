"""``refresh_intents``: bring open intents up to date from the broker (status, fills, executions) without ever
sending an order. Called by the portfolio monitor, and after ``execute_intents`` when fills come later."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from include.execution import ledger
from include.execution.broker import Broker, BrokerView, match_at_broker, poll_status, record_executions
from include.execution.models import ACKNOWLEDGED, SUBMITTED, UNKNOWN, IntentRecord

log = logging.getLogger("include.execution")


def refresh_intents(
    dsn: str, broker: Broker, *, dag_id: str | None = None, run_id: str | None = None,
    intent_ids: Sequence[str] | None = None, with_executions: bool = True,
) -> list[IntentRecord]:
    """Update the paper/live intents still ``submitted``/``unknown``/``acknowledged`` for the broker's account
    (optionally one run's or a list of ids) and return them as they are now. One live-orders read matches them by cOID;
    orders no longer listed there are asked by id; ``with_executions`` also records each execution as a fill
    event (one paced ``/iserver/account/trades`` call). Broker errors propagate; nothing is ever submitted."""
    from include.ibkr import errors as E

    conn = ledger.connect(dsn)
    try:
        ledger.ensure_schema(conn)
        account = broker.account_id
        intents = [
            i for i in ledger.load_intents(conn, intent_ids, dag_id=dag_id, run_id=run_id,
                                           statuses=(SUBMITTED, UNKNOWN, ACKNOWLEDGED))
            if i.mode != "dry_run" and i.account_id == account
        ]  # fmt: skip
        if not intents:
            return []
        view = BrokerView.fetch(broker)
        out: list[IntentRecord] = []
        for intent in intents:
            updated = match_at_broker(conn, view, intent, None) if intent.coid in view.live else None
            if updated is None and intent.broker_order_id:
                try:
                    updated = poll_status(conn, broker, intent, None)
                except E.BadRequestError as exc:  # e.g. "OrderID ... doesn't exist" after a gateway restart
                    log.warning("order status of %s unavailable (%s); trying executions", intent.describe(), exc)
            if updated is None:
                updated = match_at_broker(conn, view, intent, None) or intent  # executions by cOID
            if with_executions:
                record_executions(conn, updated, view.trades_for(updated.coid))
            out.append(updated)
        return out
    finally:
        conn.close()
