"""``send_alert`` delivers one event to every configured channel (Airflow connections ``alerts_smtp`` and
``alerts_webhook``) and records it in ``ops.alerts`` when a market DB is configured. Nothing here does I/O at
import; delivery never raises (an alert must not break the trading path) but every failure is logged and recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)


def send_alert(
    event: str,
    summary: str,
    *,
    details: Mapping[str, Any] | None = None,
    severity: str = "critical",
    dag_id: str | None = None,
    run_id: str | None = None,
) -> list[str]:
    """Deliver to every configured channel; returns the channel names delivered. event is one of
    'task_failure', 'risk_veto', 'reconciliation_mismatch', 'gateway_unhealthy', 'protection_triggered', ...
    No channel configured -> log a warning and return []. A channel that fails to deliver is logged as an
    error and does not raise (an alert must never break the trading path), but the failure is visible."""
    try:
        from include.alerts.models import SEVERITIES, AlertEvent

        level = str(severity).lower()
        if level not in SEVERITIES:
            log.warning("alert %s: unknown severity %r, sending it as critical", event, severity)
            level = "critical"
        alert = AlertEvent(
            event=event, summary=summary or event, severity=level, details=details, dag_id=dag_id, run_id=run_id
        )
    except Exception:
        log.exception("alert %s could not be built (summary %r); nothing sent", event, summary)
        return []
    delivered, errors = deliver(alert)
    _record(alert, delivered, errors)
    return delivered


def deliver(alert: Any) -> tuple[list[str], dict[str, str]]:
    """Send ``alert`` to each configured channel; (names delivered, {name: error} of the ones that failed)."""
    delivered: list[str] = []
    errors: dict[str, str] = {}
    try:
        from include.alerts.channels import configured_channels

        channels = configured_channels()
    except Exception as exc:
        log.exception("alert %s: reading the alert connections failed", alert.event)
        return delivered, {"config": f"{type(exc).__name__}: {exc}"}
    if not channels:
        log.warning(
            "alert %s not delivered: no alert channel configured (connections alerts_smtp, alerts_webhook): %s",
            alert.event,
            alert.subject,
        )
        return delivered, errors
    for channel in channels:
        try:
            channel.send(alert)
        except Exception as exc:
            errors[channel.name] = f"{type(exc).__name__}: {exc}"
            log.error("alert %s: channel %s failed to deliver: %s", alert.event, channel.name, errors[channel.name])
        else:
            delivered.append(channel.name)
            log.info("alert %s delivered via %s: %s", alert.event, channel.name, alert.subject)
    return delivered, errors


def _record(alert: Any, delivered: list[str], errors: dict[str, str]) -> None:
    """Best effort: ops.alerts when a market DB is configured; a DB problem is logged, never raised."""
    try:
        from include.settings import load_settings, normalize_pg_url

        url = load_settings().market_db_url
        if not url:
            return
        from include.alerts.store import record_alert

        record_alert(normalize_pg_url(url), alert, delivered, errors)
    except Exception:
        log.exception("alert %s could not be recorded in ops.alerts", alert.event)
