"""Task body of ``ibkr_gateway_keepalive``: tickle, recover if needed, record in ops.gateway_health, alert on a
health flip. An unhealthy gateway is a result, not a task failure: failing would add a task_failure alert every
minute of an outage, where the health flip alerts once."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)
KEEPALIVE_SOURCE = "keepalive"


def keepalive(context: Any, *, try_reauth: bool = True, reauth_wait_s: float = 2.0) -> dict[str, Any]:
    from include.gateway.health import check_gateway
    from include.gateway.store import record_and_alert
    from include.ibkr.hook import IBKRHook
    from include.settings import load_settings

    settings = load_settings()
    dsn = settings.require_market_db_url()
    # One quick retry at most: the next minute's run is the real retry, and a slow check delays it.
    with IBKRHook(retries=1, backoff_initial=0.2, timeout=10.0).get_conn(settings) as client:
        health = check_gateway(client, try_reauth=try_reauth, reauth_wait_s=reauth_wait_s)
        if health.reauth_outcome == "recovered":
            _warm_live_orders(client)
    check_id, event = record_and_alert(dsn, health, source=KEEPALIVE_SOURCE, dag_id=context["dag"].dag_id,
                                       run_id=context["run_id"])  # fmt: skip
    latency = f"{health.latency_ms:.0f} ms" if health.latency_ms is not None else "n/a"
    log.info("gateway check %d: %s (tickle %s)%s", check_id, health.reason, latency,
             f"; alert {event}" if event else "")  # fmt: skip
    if not health.healthy:
        log.error("IBKR gateway unhealthy (check %d): %s", check_id, health.reason)
    return {"check_id": check_id, "alert_event": event, **health.as_dict()}


def _warm_live_orders(client: Any) -> None:
    """A new brokerage session answers its first live-orders call with an empty pre-flight (§8.3), and the endpoint
    is paced 1 per 5 s: made here, that call is off the trading runs' path (their first look is complete at once)."""
    from include.ibkr.errors import IBKRError

    try:
        client.warm_live_orders()
    except IBKRError as exc:  # only an optimisation: a trading run still makes the pre-flight itself
        log.warning("could not warm IBKR's live-orders feed: %s", exc)
