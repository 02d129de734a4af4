"""The trading gate: may a trading run talk to the gateway now? A fresh unhealthy keepalive record refuses at
once; otherwise (healthy, stale or no record, e.g. ``make demo`` without the keepalive DAG) a live check decides.
Never a fallback to simulated data: refusing means the trading tasks skip and no order is placed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from include.gateway.health import UNREACHABLE, GatewayHealth, check_gateway

if TYPE_CHECKING:
    from include.ibkr.client import IBKRClient

log = logging.getLogger(__name__)

# The keepalive runs every minute: a record older than this means it is not running (or lagging).
MAX_RECORD_AGE = timedelta(minutes=3)
GATE_SOURCE = "trading_gate"


@dataclass(frozen=True)
class GateDecision:
    """``allow``: trade; ``wait``: gateway unreachable, keep waiting (the sensor's timeout fails the run);
    neither: refuse (skip the trading tasks) for ``reason``."""

    allow: bool
    reason: str
    basis: str  # "keepalive" (a fresh record decided) or "live" (a check just now)
    wait: bool = False
    state: str = ""


def from_record(
    dsn: str | None, *, now: datetime | None = None, max_age: timedelta = MAX_RECORD_AGE
) -> GateDecision | None:
    """A refusal when the latest keepalive record is fresh and unhealthy; None means: check live."""
    if not dsn:
        return None
    from include.gateway.store import latest
    from include.marketdata import db

    with db.connection(dsn) as conn:
        last = latest(conn)
    now = now or datetime.now(UTC)
    if last is None:
        log.info("no gateway health record yet (is the ibkr_gateway_keepalive DAG running?): checking live")
        return None
    age = (now - last.checked_at).total_seconds()
    if age > max_age.total_seconds():
        log.info("latest gateway health record is %.0f s old (> %.0f s): checking live", age, max_age.total_seconds())
        return None
    if last.healthy:
        return None  # confirmed by the live check, which also catches a loss since the record
    return GateDecision(
        allow=False,
        basis="keepalive",
        state=last.state,
        reason=f"{last.reason} [keepalive check {last.check_id} by {last.source}, {age:.0f} s ago]",
    )


def live_decision(health: GatewayHealth) -> GateDecision:
    if health.healthy:
        return GateDecision(allow=True, reason=health.reason, basis="live", state=health.state)
    return GateDecision(allow=False, wait=health.state == UNREACHABLE, reason=health.reason, basis="live",
                        state=health.state)  # fmt: skip


def evaluate(
    client_factory: Callable[[], IBKRClient],
    dsn: str | None,
    *,
    dag_id: str | None = None,
    run_id: str | None = None,
    max_age: timedelta = MAX_RECORD_AGE,
    reauth_wait_s: float = 2.0,
) -> GateDecision:
    """The gate's decision; a live check is recorded in ops.gateway_health (and alerts on a flip) like any other."""
    refused = from_record(dsn, max_age=max_age)
    if refused is not None:
        return refused
    with client_factory() as client:
        health = check_gateway(client, try_reauth=True, reauth_wait_s=reauth_wait_s)
    if dsn:
        from include.gateway.store import record_and_alert

        try:
            record_and_alert(dsn, health, source=GATE_SOURCE, dag_id=dag_id, run_id=run_id)
        except Exception:  # the decision stands without the record
            log.exception("could not record the gate's gateway check")
    return live_decision(health)
