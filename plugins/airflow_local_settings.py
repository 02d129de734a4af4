"""Airflow local settings: the scheduler (LocalExecutor) and Celery workers import dbt, Cosmos and exchange_calendars
before they fork task processes, so a dbt task skips ~2 s of imports and a task that asks the exchange calendar
(market_open, every mapped fetch_bars) ~0.5 s; no other Airflow process preloads (docs/deployment.md).
AIRFLOW_PRELOAD_TASK_MODULES=0 turns it off. Only modules: a calendar built here would end a year after the
scheduler started."""

from __future__ import annotations

import importlib
import logging
import os
import sys

PRELOAD = ("dbt.cli.main", "dbt.adapters.postgres", "cosmos.operators.local", "exchange_calendars")


def _forks_task_processes(argv: list[str]) -> bool:
    words = [a for a in argv[1:3] if not a.startswith("-")]
    return os.path.basename(argv[0]) == "airflow" and (words[:1] == ["scheduler"] or words[:2] == ["celery",
                                                                                                     "worker"])


if _forks_task_processes(sys.argv) and os.environ.get("AIRFLOW_PRELOAD_TASK_MODULES", "1") not in ("0", "false"):
    for _name in PRELOAD:
        try:
            importlib.import_module(_name)
        except Exception as exc:  # an optimisation only: the task imports what it needs itself
            logging.getLogger(__name__).warning("preloading %s for task processes failed: %s", _name, exc)
    logging.getLogger(__name__).info("preloaded for task processes: %s", ", ".join(PRELOAD))
