"""Delivery channels built from Airflow connections: ``alerts_smtp`` (e-mail) and ``alerts_webhook`` (a JSON POST
that Slack and Discord incoming webhooks accept). A connection that is not defined is no channel; one that is
defined but unusable is a channel whose delivery fails with the reason."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from include.alerts.models import AlertEvent

log = logging.getLogger(__name__)

SMTP_CONN_ID = "alerts_smtp"
WEBHOOK_CONN_ID = "alerts_webhook"
DEFAULT_TIMEOUT = 10.0
WEBHOOK_FORMATS = ("generic", "slack", "discord")


class AlertConfigError(ValueError):
    """An alert connection is defined but cannot be used; the message names the connection and the field."""


class Channel(Protocol):
    name: str

    def send(self, alert: AlertEvent) -> None: ...


def _flag(extra: Mapping[str, Any], key: str, default: bool) -> bool:
    value = extra.get(key, default)
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def _timeout(conn_id: str, extra: Mapping[str, Any]) -> float:
    try:
        return float(extra.get("timeout", DEFAULT_TIMEOUT))
    except (TypeError, ValueError):
        raise AlertConfigError(f"connection {conn_id!r}: extra.timeout must be a number of seconds") from None


@dataclass(frozen=True)
class SmtpChannel:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl: bool = False
    starttls: bool = False
    timeout: float = DEFAULT_TIMEOUT
    name: str = "smtp"

    @classmethod
    def from_connection(cls, conn: Any) -> SmtpChannel:
        extra = conn.extra_dejson or {}
        if not conn.host:
            raise AlertConfigError(f"connection {SMTP_CONN_ID!r} has no host")
        to = extra.get("to") or []
        recipients = tuple(r.strip() for r in (to.split(",") if isinstance(to, str) else to) if r and r.strip())
        if not recipients:
            raise AlertConfigError(f"connection {SMTP_CONN_ID!r} needs extra.to (one address or a list)")
        sender = extra.get("from") or extra.get("from_email") or conn.login
        if not sender or "@" not in sender:
            raise AlertConfigError(f"connection {SMTP_CONN_ID!r} needs extra.from (the sender address)")
        port = int(conn.port) if conn.port else None
        use_ssl = _flag(extra, "ssl", port == 465)
        starttls = _flag(extra, "starttls", port == 587)
        if use_ssl and starttls:
            raise AlertConfigError(f"connection {SMTP_CONN_ID!r}: extra.ssl and extra.starttls exclude each other")
        return cls(
            host=conn.host,
            port=port or (465 if use_ssl else 587 if starttls else 25),
            sender=sender,
            recipients=recipients,
            login=conn.login or None,
            password=conn.password or None,
            ssl=use_ssl,
            starttls=starttls,
            timeout=_timeout(SMTP_CONN_ID, extra),
        )

    def message(self, alert: AlertEvent) -> Any:
        from email.message import EmailMessage
        from email.utils import format_datetime, make_msgid

        msg = EmailMessage()
        msg["Subject"] = alert.subject
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = format_datetime(alert.created_at)
        msg["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2])
        msg["X-Alert-Event"] = alert.event
        msg["X-Alert-Severity"] = alert.severity
        msg.set_content(alert.text() + "\n")
        return msg

    def send(self, alert: AlertEvent) -> None:
        import smtplib
        import ssl

        context = ssl.create_default_context()
        if self.ssl:
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with client:
            if self.starttls:
                client.starttls(context=context)
            if self.login:
                client.login(self.login, self.password or "")
            refused = client.send_message(self.message(alert), from_addr=self.sender, to_addrs=list(self.recipients))
        if refused:
            raise RuntimeError(f"SMTP server refused recipients: {sorted(refused)}")


@dataclass(frozen=True)
class WebhookChannel:
    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    format: str = "generic"
    timeout: float = DEFAULT_TIMEOUT
    verify_ssl: bool = True
    name: str = "webhook"

    @classmethod
    def from_connection(cls, conn: Any) -> WebhookChannel:
        """host = the full URL (``https://hooks.slack.com/services/...``), or host + port with schema = http/https
        as Airflow's HTTP connections have it; extra: headers, format (generic/slack/discord), timeout, verify_ssl."""
        extra = conn.extra_dejson or {}
        host = (conn.host or "").strip()
        if not host:
            raise AlertConfigError(f"connection {WEBHOOK_CONN_ID!r} has no host (the webhook URL)")
        if "://" in host:
            url = host
        else:
            port = f":{conn.port}" if conn.port else ""
            url = f"{conn.schema or 'https'}://{host}{port}"
        if extra.get("path"):
            url = url.rstrip("/") + "/" + str(extra["path"]).lstrip("/")
        headers = extra.get("headers") or {}
        if not isinstance(headers, Mapping):
            raise AlertConfigError(f"connection {WEBHOOK_CONN_ID!r}: extra.headers must be an object")
        if conn.password and not any(k.lower() == "authorization" for k in headers):
            headers = {**headers, "Authorization": f"Bearer {conn.password}"}
        fmt = str(extra.get("format", "generic")).lower()
        if fmt not in WEBHOOK_FORMATS:
            raise AlertConfigError(f"connection {WEBHOOK_CONN_ID!r}: extra.format must be one of {WEBHOOK_FORMATS}")
        return cls(
            url=url,
            headers={str(k): str(v) for k, v in headers.items()},
            format=fmt,
            timeout=_timeout(WEBHOOK_CONN_ID, extra),
            verify_ssl=_flag(extra, "verify_ssl", True),
        )

    def body(self, alert: AlertEvent) -> dict[str, Any]:
        payload = alert.payload()
        if self.format == "slack":
            return {"text": payload["text"]}
        if self.format == "discord":
            return {"content": payload["content"]}
        return payload

    def send(self, alert: AlertEvent) -> None:
        import httpx

        from include.tls import verify_option

        response = httpx.post(self.url, json=self.body(alert), headers=dict(self.headers), timeout=self.timeout,
                              verify=verify_option(self.verify_ssl))
        if response.status_code >= 300:
            raise RuntimeError(f"webhook answered HTTP {response.status_code}: {response.text[:200]}")


@dataclass(frozen=True)
class BrokenChannel:
    """A connection that is defined but unusable: delivering fails with the configuration error."""

    name: str
    error: str

    def send(self, alert: AlertEvent) -> None:
        raise AlertConfigError(self.error)


CHANNEL_TYPES: dict[str, tuple[str, Any]] = {
    "smtp": (SMTP_CONN_ID, SmtpChannel),
    "webhook": (WEBHOOK_CONN_ID, WebhookChannel),
}


def configured_channels() -> list[Channel]:
    """The channels whose Airflow connection exists (env ``AIRFLOW_CONN_ALERTS_*`` or the metadata DB)."""
    from include.settings import _airflow_connection

    channels: list[Channel] = []
    for name, (conn_id, factory) in CHANNEL_TYPES.items():
        conn = _airflow_connection(conn_id)
        if conn is None:
            continue
        try:
            channels.append(factory.from_connection(conn))
        except (AlertConfigError, TypeError, ValueError) as exc:
            channels.append(BrokenChannel(name=name, error=str(exc)))
    return channels
