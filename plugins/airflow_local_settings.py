"""Airflow local settings: the scheduler (LocalExecutor) and Celery workers import dbt, Cosmos, exchange_calendars and
the project's own modules before they fork task processes, so a task process starts with them imported: a dbt task
skips ~2 s of imports, a task that asks the exchange calendar (market_open, every mapped fetch_bars) ~0.5 s, and every
task ~0.1 s of its DAG file's parse plus up to ~0.1 s of its step's imports. No other Airflow process preloads
(docs/deployment.md). AIRFLOW_PRELOAD_TASK_MODULES=0 turns it off. The exchange calendar is built here too (~0.15 s
of every task that asks it): include.marketdata.calendar builds it again when it nears its end, a year on. So is the
verified TLS context of the HTTPS clients (include/tls.py: ~40 ms of every task that logs to MLflow).

The project's modules are the ones the DAG files import at top level (read from their source, not run) and
TASK_MODULES. An edit of one of their files still reaches the next task: a task process that finds a preloaded
project file changed drops every preloaded project module and imports them afresh, as it would without the preload.

Airflow's plugins manager runs this file again in every task process; a process forked from a preloading one knows it
from the environment (PRELOADED_BY) and does nothing.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path

PRELOAD = ("dbt.cli.main", "dbt.adapters.postgres", "cosmos.operators.local", "exchange_calendars")
# The project modules the trading and ingestion steps import when they run (inside their task functions)
TASK_MODULES = ("include.trading.tasks", "include.trading.on_demand", "include.trading.conf",
                "include.trading.submission", "include.strategies.registry", "include.quality.verdicts",
                "include.risk.state_store", "include.alerts.events", "include.ibkr.client", "include.execution.ledger",
                "include.tracking", "include.marketdata.ingest", "include.marketdata.loaders")
PRELOADED_BY = "AIRFLOW_TASK_MODULES_PRELOADED_BY"  # the pid of the process that preloaded, inherited by its forks

log = logging.getLogger(__name__)


def _forks_task_processes(argv: list[str]) -> bool:
    words = [a for a in argv[1:3] if not a.startswith("-")]
    return os.path.basename(argv[0]) == "airflow" and (words[:1] == ["scheduler"] or words[:2] == ["celery",
                                                                                                     "worker"])


def dag_file_imports(dags_folder: Path) -> list[str]:
    """The modules the DAG files under ``dags_folder`` import at top level, in order, from their source."""
    import ast

    names: list[str] = []
    for path in sorted(dags_folder.rglob("*.py")):
        try:
            tree = ast.parse(path.read_bytes(), str(path))
        except (OSError, SyntaxError, ValueError):
            continue  # the dag-processor reports it; not this file's business
        for node in tree.body:
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level and node.module != "__future__":
                names.append(node.module)
    return list(dict.fromkeys(names))


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def forget_edited_project_modules(packages: frozenset[str], stamps: dict[str, tuple[int, int] | None]) -> None:
    """In a forked task process: if a preloaded project file changed (or went) since the preload, drop every module
    of the project's packages so the task imports the files as they are now."""
    if any(_stamp(path) != stamp for path, stamp in stamps.items()):
        for name in [n for n in sys.modules if n.partition(".")[0] in packages]:
            del sys.modules[name]


def _library_folders() -> tuple[str, ...]:
    """Where installed code lives (the interpreter's and the virtualenv's libraries): it changes only with a new
    image or install."""
    import site
    import sysconfig

    paths = [path for key, path in sysconfig.get_paths().items() if key in ("stdlib", "platstdlib", "purelib",
                                                                            "platlib")]
    return tuple({os.path.join(os.path.realpath(path), "") for path in [*paths, *site.getsitepackages()]})


def _installed(module: object, library_folders: tuple[str, ...]) -> bool:
    where = getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", None) or []), None)
    if not where:
        return True  # built in
    return os.path.realpath(where).startswith(library_folders)


def preload_project_modules(modules: list[str]) -> tuple[frozenset[str], dict[str, tuple[int, int] | None]]:
    """Import ``modules``; return the project's packages among them (top-level names not installed in the
    interpreter's library folders, e.g. ``include``) and the (mtime, size) of every file of theirs now imported."""
    _import_all(modules)
    tops = {name.partition(".")[0] for name in modules}
    folders = _library_folders()
    packages = frozenset(top for top in tops if top in sys.modules and not _installed(sys.modules[top], folders))
    files = {getattr(mod, "__file__", None) for name, mod in list(sys.modules.items())
             if name.partition(".")[0] in packages}
    return packages, {f: _stamp(f) for f in files if f}


def _import_all(modules: Iterable[str]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # an optimisation only: the task imports what it needs itself
            log.warning("preloading %s for task processes failed: %s", name, exc)


def _warm() -> None:
    """Built once for every task: the calendars of the settings' exchange and workflow.yaml's market (market_open),
    and the verified TLS context of the HTTPS clients (MLflow, LLM, webhooks: ~40 ms a task that logs to MLflow)."""
    try:
        from include.config.workflow import ConfigLoader
        from include.marketdata.calendar import DEFAULT_EXCHANGE, warm

        warm(dict.fromkeys([DEFAULT_EXCHANGE, ConfigLoader().get_market_config().exchange]))
    except Exception as exc:  # an optimisation only: each task builds the calendar it needs itself
        log.warning("building the exchange calendar for task processes failed: %s", exc)
    try:
        from include.tls import verified_context

        verified_context()
    except Exception as exc:  # likewise: a client builds it on first use
        log.warning("loading the TLS certificates for task processes failed: %s", exc)


def _preload() -> None:
    _import_all(PRELOAD)
    from airflow.configuration import conf

    modules = [*dag_file_imports(Path(conf.get("core", "dags_folder"))), *TASK_MODULES]
    _warm()  # first: the modules it imports are then watched for edits with the rest
    packages, stamps = preload_project_modules(modules)
    os.register_at_fork(after_in_child=functools.partial(forget_edited_project_modules, packages, stamps))
    os.environ[PRELOADED_BY] = str(os.getpid())
    log.info("preloaded for task processes: %s and %d modules of %s", ", ".join(PRELOAD), len(stamps),
             ", ".join(sorted(packages)) or "no project package")


if (_forks_task_processes(sys.argv) and os.environ.get("AIRFLOW_PRELOAD_TASK_MODULES", "1") not in ("0", "false")
        and not os.environ.get(PRELOADED_BY)):
    _preload()
