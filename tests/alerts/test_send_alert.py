"""``send_alert`` against a real SMTP server (aiosmtpd) and a real HTTP receiver, configured the way a deployment
configures them (Airflow connections from ``AIRFLOW_CONN_*``), and its record in ``ops.alerts``."""

from __future__ import annotations

import json

import psycopg2
import pytest

from include.alerts import send_alert
from include.alerts.channels import SmtpChannel, WebhookChannel
from include.alerts.models import AlertEvent
from include.alerts.store import recent_alerts

DETAILS = {"symbols": ["TSLA", "NVDA"], "expected": 10, "found": 7}


def _alert(**kw):
    return send_alert(
        "reconciliation_mismatch",
        "positions differ from the ledger",
        details=DETAILS,
        dag_id="portfolio_monitor",
        run_id="manual__2026-01-02",
        **kw,
    )


def test_smtp_delivers_subject_body_and_recipients(smtp_server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_SMTP", smtp_server.connection())
    assert _alert() == ["smtp"]
    assert smtp_server.logins == ["alerts"]  # authenticated with the connection's login/password
    [mail] = smtp_server.messages
    assert mail["mail_from"] == "airflow@example.test"
    assert mail["rcpt_tos"] == ["ops@example.test", "desk@example.test"]
    msg = mail["message"]
    assert msg["Subject"] == "[CRITICAL] reconciliation_mismatch: positions differ from the ledger"
    assert msg["To"] == "ops@example.test, desk@example.test"
    assert msg["X-Alert-Event"] == "reconciliation_mismatch"
    body = msg.get_content()
    assert "dag_id: portfolio_monitor" in body and "run_id: manual__2026-01-02" in body
    assert 'symbols: ["TSLA", "NVDA"]' in body and "found: 7" in body


def test_smtp_recipients_as_a_comma_separated_string_and_the_port_default(smtp_server):
    class Conn:
        host, port, login, password = "mail.example.test", None, None, None
        extra_dejson = {"from": "a@example.test", "to": "x@example.test, y@example.test", "starttls": True}

    channel = SmtpChannel.from_connection(Conn())
    assert channel.recipients == ("x@example.test", "y@example.test")
    assert (channel.port, channel.starttls, channel.ssl) == (587, True, False)
    Conn.extra_dejson = {"from": "a@example.test"}
    with pytest.raises(ValueError, match=r"extra\.to"):
        SmtpChannel.from_connection(Conn())


def test_webhook_posts_slack_and_discord_compatible_json(webhook_receiver, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_WEBHOOK", webhook_receiver.connection())
    assert _alert(severity="warning") == ["webhook"]
    [request] = webhook_receiver.requests
    assert request["headers"]["x-alert-token"] == "tok-123"
    assert request["headers"]["content-type"] == "application/json"
    body = request["json"]
    assert body["text"].startswith("[WARNING] reconciliation_mismatch: positions differ from the ledger")
    assert body["content"] == body["text"]  # Discord's field, same message (short enough)
    assert {k: body[k] for k in ("event", "severity", "summary", "dag_id", "run_id", "details", "source")} == {
        "event": "reconciliation_mismatch",
        "severity": "warning",
        "summary": "positions differ from the ledger",
        "dag_id": "portfolio_monitor",
        "run_id": "manual__2026-01-02",
        "details": DETAILS,
        "source": "ibkr-airflow",
    }
    assert body["created_at"].endswith("Z") or "+00:00" in body["created_at"]


def test_webhook_formats_and_discord_length_limit():
    alert = AlertEvent(event="gateway_unhealthy", summary="x" * 3000, details={"n": 1})
    generic = WebhookChannel(url="http://unused").body(alert)
    assert len(generic["text"]) > 3000 and len(generic["content"]) == 2000 and generic["content"].endswith("...")
    assert WebhookChannel(url="http://unused", format="slack").body(alert) == {"text": generic["text"]}
    assert WebhookChannel(url="http://unused", format="discord").body(alert) == {"content": generic["content"]}


def test_one_failing_channel_does_not_stop_the_other_nor_raise(
    smtp_server, webhook_receiver, monkeypatch, market_db_url, caplog
):
    monkeypatch.setenv("MARKET_DB_URL", market_db_url)
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_SMTP", smtp_server.connection())
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_WEBHOOK", webhook_receiver.connection(status=500))
    with caplog.at_level("ERROR", logger="include.alerts"):
        assert _alert() == ["smtp"]
    assert len(smtp_server.messages) == 1 and len(webhook_receiver.requests) == 1  # the webhook was tried
    assert any(
        "channel webhook failed to deliver" in r.getMessage() and "HTTP 500" in r.getMessage() for r in caplog.records
    )
    row = recent_alerts(market_db_url, event="reconciliation_mismatch", limit=1)[0]
    assert row["channels"] == ["smtp"] and "HTTP 500" in row["errors"]["webhook"]

    # the other way round: the SMTP server is gone, the webhook still gets the alert
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_WEBHOOK", webhook_receiver.connection())
    smtp_down = json.loads(smtp_server.connection())
    smtp_down["port"] = 1
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_SMTP", json.dumps(smtp_down))
    assert _alert() == ["webhook"]
    row = recent_alerts(market_db_url, event="reconciliation_mismatch", limit=1)[0]
    assert row["channels"] == ["webhook"] and "ConnectionRefusedError" in row["errors"]["smtp"]


def test_misconfigured_connection_is_a_failed_channel_not_an_exception(webhook_receiver, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_SMTP", json.dumps({"conn_type": "smtp", "host": "127.0.0.1"}))
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_WEBHOOK", webhook_receiver.connection())
    assert _alert() == ["webhook"]


def test_no_channel_configured_returns_empty_and_warns(market_db_url, monkeypatch, caplog):
    monkeypatch.setenv("MARKET_DB_URL", market_db_url)
    with caplog.at_level("WARNING", logger="include.alerts"):
        assert send_alert("gateway_unhealthy", "gateway down", run_id="r-none") == []
    assert any("no alert channel configured" in r.getMessage() for r in caplog.records)
    [row] = [r for r in recent_alerts(market_db_url, event="gateway_unhealthy") if r["run_id"] == "r-none"]
    assert row["channels"] == [] and row["severity"] == "critical" and row["summary"] == "gateway down"


def test_every_alert_is_recorded_in_ops_alerts(webhook_receiver, market_db_url, monkeypatch):
    monkeypatch.setenv("MARKET_DB_URL", market_db_url)
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_WEBHOOK", webhook_receiver.connection())
    assert send_alert(
        "protection_triggered",
        "stop hit",
        details={"symbol": "TSLA", "price": 201.5},
        severity="Warning",
        dag_id="d1",
        run_id="r-rec",
    ) == ["webhook"]
    with psycopg2.connect(market_db_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT event, severity, summary, details, dag_id, channels, errors FROM ops.alerts WHERE run_id = 'r-rec'"
        )
        assert cur.fetchall() == [
            ("protection_triggered", "warning", "stop hit", {"symbol": "TSLA", "price": 201.5}, "d1", ["webhook"], {})
        ]


def test_a_database_error_does_not_break_alerting(webhook_receiver, monkeypatch, caplog):
    monkeypatch.setenv("MARKET_DB_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_WEBHOOK", webhook_receiver.connection())
    with caplog.at_level("ERROR", logger="include.alerts"):
        assert send_alert("task_failure", "boom", details={"exc": ValueError("x")}) == ["webhook"]
    assert any("could not be recorded in ops.alerts" in r.getMessage() for r in caplog.records)
    assert webhook_receiver.bodies()[0]["details"] == {"exc": "x"}  # non-JSON values become strings


def test_unknown_severity_is_sent_as_critical(webhook_receiver, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_WEBHOOK", webhook_receiver.connection())
    assert send_alert("risk_veto", "odd", severity="panic") == ["webhook"]
    assert webhook_receiver.bodies()[0]["severity"] == "critical"
