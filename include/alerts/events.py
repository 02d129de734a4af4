"""Alerts the trading path raises, built from its own records (one function per event)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from include.alerts.models import RISK_VETO

log = logging.getLogger(__name__)


def _already_delivered(event: str, dag_id: str | None, run_id: str | None, summary: str,
                       intent_id: str | None = None) -> bool:
    """Best effort (False when there is no market DB or it cannot be read): better a repeat than a lost alert."""
    try:
        from include.alerts.store import already_delivered
        from include.settings import load_settings, normalize_pg_url

        url = load_settings().market_db_url
        return bool(url) and already_delivered(normalize_pg_url(url), event, dag_id, run_id, summary, intent_id)
    except Exception:
        log.exception("could not check ops.alerts for an earlier %s alert", event)
        return False


def risk_veto_alert(
    decisions: Iterable[Mapping[str, Any]],
    *,
    dag_id: str | None,
    run_id: str | None,
    strategy: str | None = None,
    mode: str | None = None,
) -> list[str] | None:
    """One ``risk_veto`` alert (severity warning) for a run's vetoed BUY/SELL decisions (risk report dicts), naming
    each symbol, side and reason; None (nothing sent) when no order was vetoed."""
    from include.alerts import send_alert

    vetoed = [d for d in decisions if d.get("status") == "vetoed"]  # HOLDs are only vetoed for bad data
    if not vetoed:
        return None
    items = [{"symbol": d["symbol"], "action": d["action"], "confidence": d.get("confidence"),
              "reasons": [v["reason"] for v in d.get("vetoes", ()) if not v.get("approved", False)]}
             for d in vetoed]  # fmt: skip
    listed = "; ".join(f"{i['action']} {i['symbol']} ({', '.join(i['reasons']) or 'no reason'})" for i in items)
    where = ", ".join(p for p in (f"strategy {strategy}" if strategy else "", f"mode {mode}" if mode else "") if p)
    summary = f"risk vetoed {len(items)} order(s) in {dag_id}" + (f" ({where})" if where else "") + f": {listed}"
    details = {"strategy": strategy, "mode": mode, "vetoed": len(items), "vetoes": items}
    if _already_delivered(RISK_VETO, dag_id, run_id, summary):
        log.info("risk_veto alert already delivered for %s %s (task retried): not sent again", dag_id, run_id)
        return []
    return send_alert(RISK_VETO, summary, details=details, severity="warning", dag_id=dag_id, run_id=run_id)


def protection_alerts(events: Iterable[Mapping[str, Any]], *, strategy: Any, mode: str, dag_id: str | None,
                      run_id: str | None) -> None:
    """One ``protection_triggered`` alert (severity warning) per newly recorded protection event; never raises."""
    from include.alerts import send_alert

    for event in events:
        what = "REDUCING (exits only)" if event["protection"] == "max_drawdown" else f"cooldown {event['symbol']}"
        try:
            send_alert("protection_triggered", f"strategy {strategy.name}: {what}",
                       details={"strategy_id": strategy.id, "mode": mode, **event}, severity="warning",
                       dag_id=dag_id, run_id=run_id)
        except Exception:  # the alert must not stop the risk assessment; the event is recorded either way
            log.exception("could not send the protection_triggered alert")


def order_alerts(report: Any, failure: Any, *, dag_id: str, run_id: str, strategy: str, mode: str) -> None:
    """One ``order_rejected`` alert (critical) per intent of this run that ended rejected, failed or unknown, and
    one ``order_vetoed`` alert (warning) per intent the re-check at submission refused; a retried or cleared task
    does not repeat an alert this DAG run already delivered. Never raises."""
    from include.alerts import send_alert
    from include.alerts.models import ORDER_REJECTED, ORDER_VETOED

    try:
        by_id = {i.intent_id: i for i in report.intents}
        items = [(ORDER_REJECTED, "critical", f"{f.side} {f.symbol} (intent {f.intent_id}) {f.ledger_status}: "
                  f"{f.message}", {"intent_id": f.intent_id, "error_type": f.error_type, "http": f.http_status})
                 for f in (failure.failures if failure is not None else [])]
        items += [(ORDER_VETOED, "warning", f"{by_id[i].side} {by_id[i].symbol} (intent {i}) not sent: {why}",
                   {"intent_id": i}) for i, why in report.vetoed.items() if i in by_id]
        for event, severity, text, details in items:
            summary = f"{event.replace('_', ' ')} in {dag_id} (strategy {strategy}, mode {mode}): {text}"
            if _already_delivered(event, dag_id, run_id, summary, details["intent_id"]):  # once per intent
                continue
            send_alert(event, summary, details={"strategy": strategy, "mode": mode, **details}, severity=severity,
                       dag_id=dag_id, run_id=run_id)
    except Exception:  # an alert must never break the order path
        log.exception("could not send the order alerts of %s %s", dag_id, run_id)


def symbols_not_loaded_alert(failed: Mapping[str, str], *, loaded: Iterable[str], dag_id: str | None,
                             run_id: str | None, on_symbol_error: str) -> list[str] | None:
    """One ``symbols_not_loaded`` alert for an ingestion run, naming each symbol that did not load and why (severity
    error when the run fails for them, warning with ``on_symbol_error`` warn); None when every symbol loaded. A
    cleared task does not repeat an alert its DAG run already delivered. Never raises."""
    from include.alerts import send_alert
    from include.alerts.models import SYMBOLS_NOT_LOADED

    if not failed:
        return None
    try:
        listed = "; ".join(f"{symbol} ({why})" for symbol, why in sorted(failed.items()))
        ok = sorted(loaded)
        summary = (f"{len(failed)} symbol(s) not loaded in {dag_id}: {listed}"
                   f" (loaded: {', '.join(ok) or 'none'}; on_symbol_error={on_symbol_error})")
        if _already_delivered(SYMBOLS_NOT_LOADED, dag_id, run_id, summary):
            return []
        return send_alert(SYMBOLS_NOT_LOADED, summary, severity="error" if on_symbol_error == "fail" else "warning",
                          details={"failed": dict(failed), "loaded": ok, "on_symbol_error": on_symbol_error},
                          dag_id=dag_id, run_id=run_id)
    except Exception:  # an alert must never break the ingestion path
        log.exception("could not send the symbols_not_loaded alert of %s %s", dag_id, run_id)
        return None
