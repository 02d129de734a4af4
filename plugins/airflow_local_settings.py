"""Airflow local settings (Airflow imports this module at start-up from the plugins folder): warm task processes.

Airflow forks every task process from its executor (the LocalExecutor's workers are forked from the scheduler, a
Celery worker's pool from the worker), so what the parent has imported the task process has for free. dbt and
Cosmos cost ~2 s of imports per dbt task otherwise (``python -m bench cosmos_scheduler``). Only those two
commands preload; every other Airflow process (API server, DAG processor, triggerer, CLI) starts as before.
Set AIRFLOW_PRELOAD_TASK_MODULES=0 to turn it off.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

PRELOAD = ("dbt.cli.main", "dbt.adapters.postgres", "cosmos.operators.local")


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
