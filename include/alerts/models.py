"""The alert every channel renders: one event (what happened), a severity, a one-line summary and structured
details (JSON-safe), tied to the DAG run that raised it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Severity = Literal["info", "warning", "error", "critical"]
SEVERITIES: tuple[str, ...] = ("info", "warning", "error", "critical")

# The events the project raises (others are accepted: the event is a free-form name).
TASK_FAILURE = "task_failure"
RISK_VETO = "risk_veto"
RECONCILIATION_MISMATCH = "reconciliation_mismatch"
GATEWAY_UNHEALTHY = "gateway_unhealthy"
PROTECTION_TRIGGERED = "protection_triggered"
ORDER_REJECTED = "order_rejected"  # an intent rejected, failed or left unknown: the task fails too
ORDER_VETOED = "order_vetoed"  # refused by the re-check right before submission (never sent)
SYMBOLS_NOT_LOADED = "symbols_not_loaded"  # an ingestion run's symbols that failed alone (the others loaded)

DISCORD_CONTENT_LIMIT = 2000  # Discord rejects longer `content`
SOURCE = "ibkr-airflow"


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON types (dates, decimals, exceptions ... become strings)."""
    return json.loads(json.dumps(value, default=str))


class AlertEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    event: str = Field(min_length=1, max_length=100)
    summary: str = Field(min_length=1)
    severity: Severity = "critical"
    details: dict[str, Any] = Field(default_factory=dict)
    dag_id: str | None = None
    run_id: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @field_validator("details", mode="before")
    @classmethod
    def _details_json_safe(cls, value: Any) -> Any:
        return {} if value is None else json_safe(dict(value))

    @property
    def subject(self) -> str:
        """E-mail subject / first line: ``[CRITICAL] task_failure: <summary>`` (single line, <= 200 chars)."""
        line = " ".join(self.summary.split())
        subject = f"[{self.severity.upper()}] {self.event}: {line}"
        return subject if len(subject) <= 200 else subject[:197] + "..."

    def text(self) -> str:
        """Plain-text body: the summary, where it came from, then every detail (one per line, JSON values)."""
        lines = [f"[{self.severity.upper()}] {self.event}: {self.summary}"]
        if self.dag_id:
            lines.append(f"dag_id: {self.dag_id}")
        if self.run_id:
            lines.append(f"run_id: {self.run_id}")
        lines.append(f"at: {self.created_at.isoformat(timespec='seconds')}")
        for key, value in self.details.items():
            shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            lines.append(f"{key}: {shown}")
        return "\n".join(lines)

    def payload(self) -> dict[str, Any]:
        """The generic webhook body: ``text`` (Slack), ``content`` (Discord, <= 2000 chars) and the fields."""
        text = self.text()
        content = text if len(text) <= DISCORD_CONTENT_LIMIT else text[: DISCORD_CONTENT_LIMIT - 3] + "..."
        return {"text": text, "content": content, "source": SOURCE, **self.model_dump(mode="json")}
