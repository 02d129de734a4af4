"""Alerts: delivery to the configured channels (``delivery``), the channels (SMTP, webhook), events raised by the
trading path (``events``), Airflow failure notifiers and the ``ops.alerts`` record (``store``)."""

from include.alerts.delivery import send_alert

__all__ = ["send_alert"]
