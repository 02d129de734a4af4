"""Airflow notifiers that raise alerts: ``failure_notifier()`` for every DAG's ``default_args``
(``on_failure_callback``: a task failed for good, after its retries) and ``AlertNotifier`` for any other callback.
Where the callbacks run and why a notifier never raises: docs/alerts.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import BaseNotifier

from include.alerts.models import TASK_FAILURE

_EXCEPTION_CHARS = 500


def _exception_text(exc: Any) -> str | None:
    if exc is None:
        return None
    text = f"{type(exc).__name__}: {exc}".strip().rstrip(":") if isinstance(exc, BaseException) else str(exc)
    return text if len(text) <= _EXCEPTION_CHARS else text[: _EXCEPTION_CHARS - 3] + "..."


def task_failure_details(context: Mapping[str, Any]) -> dict[str, Any]:
    """dag_id, task_id, run_id, try number, the exception and the log URL of the failed task instance."""
    ti = context.get("ti") or context.get("task_instance")
    details: dict[str, Any] = {
        "dag_id": getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": getattr(ti, "run_id", None) or context.get("run_id"),
        "try_number": getattr(ti, "try_number", None),
        "max_tries": getattr(ti, "max_tries", None),
        "exception": _exception_text(context.get("exception")),
        "logical_date": context.get("logical_date"),
    }
    map_index = getattr(ti, "map_index", None)
    if map_index is not None and map_index >= 0:
        details["map_index"] = map_index
    try:
        details["log_url"] = ti.log_url
    except Exception:  # no task instance or no API base URL configured
        details["log_url"] = None
    return details


class TaskFailureNotifier(BaseNotifier):
    """``on_failure_callback``: one ``task_failure`` alert naming the task, run, try, exception and log URL."""

    def __init__(self, severity: str = "critical") -> None:
        super().__init__()
        self.severity = severity

    def notify(self, context: Any) -> None:
        from include.alerts import send_alert

        if getattr(context.get("exception"), "alerted", False):  # the task already sent its specific alerts
            self.log.info("task failure alert not sent: the task alerted on this failure itself")
            return
        try:
            d = task_failure_details(context)
        except Exception:
            self.log.exception("task failure alert: could not read the task context")
            d = {}
        task = f"{d.get('dag_id')}.{d.get('task_id')}" + (f"[{d['map_index']}]" if "map_index" in d else "")
        summary = f"task {task} failed (try {d.get('try_number')}) in run {d.get('run_id')}"
        if d.get("exception"):
            summary += f": {d['exception'].splitlines()[0]}"
        send_alert(
            TASK_FAILURE, summary, details=d, severity=self.severity, dag_id=d.get("dag_id"), run_id=d.get("run_id")
        )


class AlertNotifier(BaseNotifier):
    """Any callback -> ``send_alert(event, summary, ...)``; ``summary`` and ``details`` are Jinja-templated
    (``AlertNotifier("protection_triggered", "{{ dag.dag_id }} stopped", severity="warning")``)."""

    template_fields: Sequence[str] = ("summary", "details")

    def __init__(
        self, event: str, summary: str, *, severity: str = "critical", details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__()
        self.event, self.summary, self.severity = event, summary, severity
        self.details = dict(details or {})

    def notify(self, context: Any) -> None:
        from include.alerts import send_alert

        ti = context.get("ti")
        dag = context.get("dag")
        send_alert(
            self.event,
            self.summary,
            details=self.details,
            severity=self.severity,
            dag_id=getattr(ti, "dag_id", None) or getattr(dag, "dag_id", None),
            run_id=getattr(ti, "run_id", None) or context.get("run_id"),
        )


def failure_notifier(severity: str = "critical") -> TaskFailureNotifier:
    """The ``on_failure_callback`` every DAG puts in its ``default_args``."""
    return TaskFailureNotifier(severity=severity)
