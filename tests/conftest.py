"""Shared fixtures: an isolated Airflow home, a real PostgreSQL, and the IBKR gateway simulator.

PostgreSQL: ``TEST_PG_ADMIN_URL`` (e.g. the machine's server on :5432) when set, else an embedded
pgserver cluster started for the session. Each session works in a database of its own.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Airflow reads its configuration at import time, so isolate it before any test imports it.
# This module can be imported twice in one session (as ``conftest`` and as ``tests.conftest`` once a test package
# is imported by name): the second import must reuse the first's home, or Airflow and the fixtures would disagree.
# Each pytest-xdist worker (``make test`` runs two) has a home, metadata DB and Cosmos cache of its own: the workers
# inherit the controller's environment, so the variable is named per worker.
_HOME_VAR = "_TESTS_AIRFLOW_HOME" + (f"_{os.environ['PYTEST_XDIST_WORKER']}" if "PYTEST_XDIST_WORKER" in os.environ
                                     else "")
_AIRFLOW_HOME = Path(os.environ.get(_HOME_VAR) or tempfile.mkdtemp(prefix="airflow-test-"))
os.environ[_HOME_VAR] = str(_AIRFLOW_HOME)
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__COSMOS__CACHE_DIR": str(_AIRFLOW_HOME / "cosmos"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__API_AUTH__JWT_SECRET": "test-secret-" + "x" * 52,
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "GX_ANALYTICS_ENABLED": "false",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "NO_PROXY": "127.0.0.1,localhost",
    }
)
for _var in ("MARKET_DB_URL", "IBKR_GATEWAY_URL", "STOCK_SYMBOLS", "IBKR_ACCOUNT_ID", "MLFLOW_TRACKING_URI"):
    os.environ.pop(_var, None)  # tests set these explicitly; the developer's shell must not leak in


# Modules that start whole stacks (an Airflow scheduler and API server, make demo + make up and a browser, Celery
# workers): about half of the suite's time. Under pytest-xdist (make test) they form one unit of work, run first and
# one after another on one worker while the other worker takes every other module (18-19 min for the suite on two
# cores, 22 min serial; with two stacks at once, 21.7 min). Serial runs run them first too.
STACK_MODULES = (
    "tests/dags/test_trading_under_scheduler.py",
    "tests/ui/test_browser.py",
    "tests/scripts/test_up_trigger_paths.py",
    "tests/scaleout/test_celery_scaleout.py",
)


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    order = {path: i for i, path in enumerate(STACK_MODULES)}
    items.sort(key=lambda item: order.get(_module(item.nodeid), len(order)))  # stable: the rest keep their order


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Whole modules per worker (a module's fixtures are built once), in collection order, the stack modules as one
    unit: see STACK_MODULES."""
    from xdist.scheduler import LoadScopeScheduling

    class StacksTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = _module(nodeid)
            return "stacks" if module in STACK_MODULES else module

    config.option.loadscopereorder = False  # not by test count: the stacks first
    return StacksTogether(config, log)


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("TEST_PG_ADMIN_URL")
    if url:
        yield url
        return
    from scripts.devstack import EmbeddedPostgres, free_port

    pgdata = Path(tempfile.mkdtemp(prefix="pg-", dir="/tmp"))  # short path: unix socket names are limited
    server = EmbeddedPostgres(pgdata, port=free_port()).start()
    try:
        yield server.dsn()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def market_db_url(pg_admin_url: str) -> Iterator[str]:
    """A throw-away database for this test session, with the raw schema applied."""
    import psycopg2

    from include.marketdata import db

    name = f"ibkr_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(pg_admin_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    # As given: on CI's trust-auth server that is a URL without a password, as many users' own (dbt and Cosmos then
    # get include/dbt_project.PLACEHOLDER_PASSWORD).
    url = f"{pg_admin_url.rpartition('/')[0]}/{name}"
    with db.connection(url) as conn:
        db.ensure_schema(conn)
    try:
        yield url
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def clean_db(market_db_url: str) -> str:
    """The session database with every raw/staging table emptied and every other schema (dbt's analytics_*,
    quality, trading, ...) dropped: code that owns those schemas must (re)create them idempotently."""
    import psycopg2

    with psycopg2.connect(market_db_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('public', 'raw', 'staging')"
            " AND nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'"
        )
        for (schema,) in cur.fetchall():
            cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
        cur.execute(
            "TRUNCATE raw.daily_bars, raw.market_snapshots, raw.contracts, raw.load_audit, staging.daily_bars"
        )
    return market_db_url


@pytest.fixture
def dbt_parse_reuse_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """dbt's own ``setup_manifest`` and no kept parse for this test, whatever an earlier test of this process
    installed (a Cosmos task's callback installs include.dbt_runtime's parse reuse for the rest of the process);
    the earlier state is back after the test."""
    from dbt.cli import requires

    from include import dbt_runtime

    monkeypatch.setattr(requires, "setup_manifest", dbt_runtime._dbt_setup_manifest or requires.setup_manifest)
    monkeypatch.setattr(dbt_runtime, "_dbt_setup_manifest", None)
    monkeypatch.setattr(dbt_runtime, "_parsed", None)


@pytest.fixture(scope="session")
def db_snapshot(pg_admin_url: str, market_db_url: str) -> Iterator[object]:
    """``db_snapshot(key, build)``: the session database in the state ``build()`` leaves it, built once per key and
    session, then copied back from a template database (~1 s instead of re-running ingestion, dbt and GX).

    Call it after ``clean_db``/``stack_env``. Connections to the database are closed by the copy (the pacing ledger
    reconnects); files ``build`` writes (e.g. quality reports) must live in a directory that outlives the test."""
    import psycopg2

    name = market_db_url.rpartition("/")[2]
    templates: dict[str, str] = {}
    admin = psycopg2.connect(pg_admin_url)
    admin.autocommit = True

    def _state(key: str, build: object) -> None:
        with admin.cursor() as cur:
            if key in templates:
                cur.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                cur.execute(f'CREATE DATABASE "{name}" TEMPLATE "{templates[key]}"')
                return
            build()
            template = f"{name}_tpl_{len(templates)}"
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
                        " AND pid <> pg_backend_pid()", (name,))  # CREATE DATABASE ... TEMPLATE needs it idle
            cur.execute(f'DROP DATABASE IF EXISTS "{template}"')
            cur.execute(f'CREATE DATABASE "{template}" TEMPLATE "{name}"')
            templates[key] = template

    try:
        yield _state
    finally:
        with admin.cursor() as cur:
            for template in templates.values():
                cur.execute(f'DROP DATABASE IF EXISTS "{template}"')
        admin.close()


@pytest.fixture(scope="session")
def simulator_server() -> Iterator[object]:
    from sim.ibkr.config import SimulatorConfig
    from sim.ibkr.server import SimulatorServer

    with SimulatorServer(SimulatorConfig(fill_mode="immediate")) as sim:
        yield sim


@pytest.fixture
def simulator(simulator_server: object) -> object:
    """The session's simulator, reset to its start-up state (orders, faults, sessions, clock)."""
    import httpx

    httpx.post(f"{simulator_server.admin_url}/reset", timeout=5).raise_for_status()
    return simulator_server


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata DB (SQLite) with the project's pools."""
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)
    from scripts import airflow_objects

    airflow_objects.apply()
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def session_mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One sqlite MLflow store for the DAG tests of a session (creating its schema takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def stack_env(monkeypatch: pytest.MonkeyPatch, clean_db: str, simulator: object,
              session_mlflow_uri: str) -> dict[str, str]:
    """Point the project's settings at the test database, the simulator and a local MLflow store."""
    env = {"MARKET_DB_URL": clean_db, "IBKR_GATEWAY_URL": simulator.base_url, "AIRFLOW_CONN_MARKET_DB": clean_db,
           "MLFLOW_TRACKING_URI": session_mlflow_uri}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture(scope="session")
def dagbag(airflow_db: Path) -> object:
    from airflow.dag_processing.dagbag import DagBag

    from include.dbt_project import ensure_manifest

    ensure_manifest(force=True)  # Cosmos renders the dbt DAG from it
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag


_PARAM_DEFAULTS: dict[str, dict] = {}


@pytest.fixture
def run_dag(dagbag: object):
    """Run a DAG with ``dag.test()``; returns (state, {task_id or task_id[map_index]: state}). The run's id is
    then ``run_dag.last_run_id``.

    Retries are switched off so a failure shows at once instead of after the retry delay.
    """

    def _run(dag_id: str, conf: dict | None = None) -> tuple[str, dict[str, str]]:
        dag = dagbag.dags[dag_id]
        for task in dag.tasks:
            task.retries = 0
        # dag.test() writes a run's conf into the DAG's params, so the next run would inherit it (e.g. an earlier
        # test's symbols): every run starts from the params as the DAG file defined them.
        defaults = _PARAM_DEFAULTS.setdefault(dag_id, copy.deepcopy(dag.params.dump()))
        dr = dag.test(run_conf={**copy.deepcopy(defaults), **(conf or {})})
        _run.last_run_id = dr.run_id
        states = {}
        for ti in dr.get_task_instances():
            key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.rendered_map_index or ti.map_index}]"
            states[key] = str(getattr(ti.state, "value", ti.state))
        return str(getattr(dr.state, "value", dr.state)), states

    return _run


def rendered_task_ids(dag_id: str, run_id: str) -> set[str]:
    """The tasks of a run that have a rendered-fields row in the Airflow metadata DB (what they uploaded)."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as Rendered
    from airflow.utils.session import create_session

    with create_session() as session:
        return {r.task_id for r in session.query(Rendered).filter_by(dag_id=dag_id, run_id=run_id)}
