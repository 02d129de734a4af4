"""``ops.alerts``: every alert raised, with the channels that delivered it and the errors of those that did not."""

from __future__ import annotations

import json
from typing import Any

from include.alerts.models import AlertEvent

DDL = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.alerts (
    id          bigserial PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    event       text NOT NULL,
    severity    text NOT NULL,
    summary     text NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    dag_id      text,
    run_id      text,
    channels    text[] NOT NULL DEFAULT '{}',
    errors      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS alerts_event_created_idx ON ops.alerts (event, created_at DESC);
CREATE INDEX IF NOT EXISTS alerts_run_idx ON ops.alerts (dag_id, run_id);
"""


def record_alert(dsn: str, alert: AlertEvent, delivered: list[str], errors: dict[str, str]) -> int:
    """Insert one row (creating the table on first use); returns its id."""
    from include.marketdata import db

    with db.connection(dsn) as conn:
        db.apply_ddl(conn, DDL)
        with conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO ops.alerts (created_at, event, severity, summary, details, dag_id, run_id, channels,"
                " errors) VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s::jsonb) RETURNING id",
                (
                    alert.created_at,
                    alert.event,
                    alert.severity,
                    alert.summary,
                    json.dumps(alert.details),
                    alert.dag_id,
                    alert.run_id,
                    list(delivered),
                    json.dumps(errors),
                ),
            )
            return int(cur.fetchone()[0])


def already_delivered(dsn: str, event: str, dag_id: str | None, run_id: str | None, summary: str,
                      intent_id: str | None = None) -> bool:
    """Whether this DAG run already delivered this alert (same event and summary, or for ``intent_id`` the same
    event about that order intent, whatever its text) to at least one channel: a retried or cleared task must not
    repeat it."""
    from include.marketdata import db

    with db.connection(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('ops.alerts')")
        if cur.fetchone()[0] is None:
            return False
        match, value = ("details->>'intent_id' = %s", intent_id) if intent_id else ("summary = %s", summary)
        cur.execute(
            "SELECT 1 FROM ops.alerts WHERE event = %s AND dag_id IS NOT DISTINCT FROM %s"
            f" AND run_id IS NOT DISTINCT FROM %s AND {match} AND cardinality(channels) > 0 LIMIT 1",
            (event, dag_id, run_id, value),
        )
        return cur.fetchone() is not None


def recent_alerts(dsn: str, *, event: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The latest alerts (newest first), optionally of one event."""
    from include.marketdata import db

    with db.connection(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('ops.alerts')")
        if cur.fetchone()[0] is None:
            return []
        cur.execute(
            "SELECT id, created_at, event, severity, summary, details, dag_id, run_id, channels, errors"
            " FROM ops.alerts WHERE %(event)s::text IS NULL OR event = %(event)s ORDER BY id DESC LIMIT %(limit)s",
            {"event": event, "limit": limit},
        )
        names = [c.name for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
