"""``ops.gateway_health``: one row per gateway check (keepalive or trading gate). A check that flips the health
(healthy -> unhealthy or back) is marked with its alert event, and only that check alerts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from include.gateway.health import GatewayHealth

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

log = logging.getLogger(__name__)

UNHEALTHY_EVENT = "gateway_unhealthy"
RECOVERED_EVENT = "gateway_recovered"
RETENTION_DAYS = 90
_RECORD_LOCK_KEY = 727_101  # serialises read-previous + insert so two checks never both see the flip

DDL = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.gateway_health (
    check_id          bigserial PRIMARY KEY,
    checked_at        timestamptz NOT NULL,
    source            text NOT NULL,
    state             text NOT NULL,
    healthy           boolean NOT NULL,
    reachable         boolean NOT NULL,
    authenticated     boolean NOT NULL,
    connected         boolean NOT NULL,
    competing         boolean NOT NULL,
    server_name       text,
    message           text,
    latency_ms        double precision,
    initial_state     text NOT NULL,
    reauth_attempted  boolean NOT NULL DEFAULT false,
    reauth_outcome    text,
    error             text,
    alert_event       text,
    dag_id            text,
    run_id            text
);
CREATE INDEX IF NOT EXISTS gateway_health_checked_at_idx ON ops.gateway_health (checked_at DESC);
"""

_COLUMNS = ("checked_at", "source", "state", "healthy", "reachable", "authenticated", "connected", "competing",
            "server_name", "message", "latency_ms", "initial_state", "reauth_attempted", "reauth_outcome", "error",
            "alert_event", "dag_id", "run_id")  # fmt: skip


@dataclass(frozen=True)
class HealthRecord:
    check_id: int
    checked_at: datetime
    source: str
    state: str
    healthy: bool
    authenticated: bool
    connected: bool
    competing: bool
    server_name: str | None
    message: str | None
    error: str | None

    @property
    def reason(self) -> str:
        detail = self.error or self.message
        text = (f"gateway {self.state}: authenticated={self.authenticated} connected={self.connected} "
                f"competing={self.competing}")  # fmt: skip
        return f"{text} ({detail})" if detail else text


def ensure_table(conn: PgConnection) -> None:
    from include.marketdata import db

    db.apply_ddl(conn, DDL)


def latest(conn: PgConnection) -> HealthRecord | None:
    """The newest check, or None when none was ever recorded (e.g. the keepalive DAG never ran)."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('ops.gateway_health') IS NOT NULL")
        if not cur.fetchone()[0]:
            conn.rollback()
            return None
        cur.execute("""SELECT check_id, checked_at, source, state, healthy, authenticated, connected, competing,
                              server_name, message, error
                       FROM ops.gateway_health ORDER BY checked_at DESC, check_id DESC LIMIT 1""")
        row = cur.fetchone()
    conn.rollback()  # read-only: end the transaction
    return HealthRecord(*row) if row else None


def transition_event(previous_healthy: bool | None, healthy: bool) -> str | None:
    """No previous record counts as healthy: the first check that finds the gateway down alerts."""
    if not healthy and previous_healthy in (None, True):
        return UNHEALTHY_EVENT
    if healthy and previous_healthy is False:
        return RECOVERED_EVENT
    return None


def record(
    conn: PgConnection, health: GatewayHealth, *, source: str, dag_id: str | None = None, run_id: str | None = None
) -> tuple[int, str | None]:
    """Insert the check (creating the table on first use); returns (check_id, alert event or None)."""
    ensure_table(conn)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_RECORD_LOCK_KEY,))
        cur.execute("SELECT healthy FROM ops.gateway_health ORDER BY checked_at DESC, check_id DESC LIMIT 1")
        row = cur.fetchone()
        event = transition_event(row[0] if row else None, health.healthy)
        values: dict[str, Any] = {**health.as_dict(), "checked_at": health.checked_at, "source": source,
                                  "alert_event": event, "dag_id": dag_id, "run_id": run_id}  # fmt: skip
        cur.execute(
            f"INSERT INTO ops.gateway_health ({', '.join(_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_COLUMNS))})"
            " RETURNING check_id",
            [values[c] for c in _COLUMNS],
        )
        check_id = int(cur.fetchone()[0])
        cur.execute("DELETE FROM ops.gateway_health WHERE checked_at < now() - make_interval(days => %s)",
                    (RETENTION_DAYS,))  # fmt: skip
    return check_id, event


def alert_transition(
    event: str | None, health: GatewayHealth, *, source: str, dag_id: str | None = None, run_id: str | None = None
) -> list[str]:
    """Send the alert of a health flip (``send_alert`` never raises; it logs and records delivery failures)."""
    if event is None:
        return []
    from include.alerts import send_alert

    if event == UNHEALTHY_EVENT:
        summary = f"IBKR gateway unhealthy: {health.reason}. Trading DAGs skip their runs until it recovers."
        severity = "critical"
    else:
        summary = f"IBKR gateway recovered: {health.reason}"
        severity = "info"
    return send_alert(event, summary, details={**health.as_dict(), "source": source}, severity=severity,
                      dag_id=dag_id, run_id=run_id)  # fmt: skip


def record_and_alert(
    dsn: str, health: GatewayHealth, *, source: str, dag_id: str | None = None, run_id: str | None = None
) -> tuple[int, str | None]:
    """Record the check, then (after the commit, so a slow channel holds no lock) alert on a health flip."""
    from include.marketdata import db

    with db.connection(dsn) as conn:
        check_id, event = record(conn, health, source=source, dag_id=dag_id, run_id=run_id)
    alert_transition(event, health, source=source, dag_id=dag_id, run_id=run_id)
    return check_id, event
