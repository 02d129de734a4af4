"""Where the dbt project lives and how its profile reaches the market-data database: ``dbt_env`` derives the
DBT_* variables of ``dbt/ibkr_market/profiles.yml`` from ``MARKET_DB_URL`` (TCP only: docs/deployment.md).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt" / "ibkr_market"


# dbt-postgres and Cosmos's profile mapping insist on a password even where the server needs none (trust or peer
# auth, e.g. postgresql://postgres@127.0.0.1:5432/market): this placeholder stands in; a server that does check
# passwords rejects it like any wrong one.
PLACEHOLDER_PASSWORD = "postgres"


def dbt_env(market_db_url: str, schema: str = "analytics") -> dict[str, str]:
    parts = urlsplit(market_db_url)
    if not parts.hostname or parts.hostname.startswith("/"):
        raise ValueError("MARKET_DB_URL must name a TCP host for dbt, e.g. postgresql://user@127.0.0.1:5432/market")
    return {
        "DBT_HOST": parts.hostname,
        "DBT_PORT": str(parts.port or 5432),
        "DBT_USER": unquote(parts.username or "postgres"),
        "DBT_PASSWORD": unquote(parts.password or PLACEHOLDER_PASSWORD),
        "DBT_DBNAME": parts.path.lstrip("/") or "postgres",
        "DBT_SCHEMA": schema,
    }


@cache
def _password_optional_mapping() -> type:
    from cosmos.profiles import PostgresUserPasswordProfileMapping  # Cosmos is imported only where dbt renders

    class PasswordOptionalPostgresMapping(PostgresUserPasswordProfileMapping):
        def get_dbt_value(self, name: str) -> object:
            value = super().get_dbt_value(name)
            return PLACEHOLDER_PASSWORD if name == "password" and not value else value

    return PasswordOptionalPostgresMapping


def postgres_profile_mapping(conn_id: str = "market_db", **profile_args: object) -> object:
    """Cosmos's Postgres user/password profile mapping for ``conn_id``, accepting a connection without a password.

    The stock mapping fails every dbt task of such a connection with "Could not find a value for secret field
    password"; this one gives dbt ``PLACEHOLDER_PASSWORD`` instead. A password the connection has is used as is.
    """
    return _password_optional_mapping()(conn_id=conn_id, profile_args=profile_args)


MANIFEST_PATH = DBT_PROJECT_DIR / "target" / "manifest.json"
PROFILE_NAME = "ibkr_market"


def ensure_manifest(force: bool = False) -> Path:
    """``dbt parse`` into target/manifest.json (what Cosmos renders from; the Docker build runs it too).

    dbt parses into a scratch directory inside target/ (from target/'s partial-parse file when there is one),
    then manifest.json and partial_parse.msgpack are moved into target/ whole: a DAG file parsed meanwhile (a
    scheduler, another test worker, a second ``ensure_manifest``) reads the old manifest or the new one, never half
    of one, which dbt's in-place write would give it."""
    if MANIFEST_PATH.exists() and not force:
        return MANIFEST_PATH
    import os
    import shutil
    import tempfile

    from dbt.cli.main import dbtRunner

    target = MANIFEST_PATH.parent
    target.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".parse-", dir=target))
    try:
        if (target / "partial_parse.msgpack").exists():
            shutil.copy2(target / "partial_parse.msgpack", scratch / "partial_parse.msgpack")
        result = dbtRunner().invoke(["parse", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir",
                                     str(DBT_PROJECT_DIR), "--target-path", str(scratch), "--log-path",
                                     str(scratch), "--quiet"])
        if not result.success:
            raise RuntimeError(f"dbt parse failed: {result.exception}")
        for name in ("partial_parse.msgpack", "manifest.json"):  # the manifest last: it is what readers look for
            if (scratch / name).exists():
                os.replace(scratch / name, target / name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return MANIFEST_PATH


def openlineage_listener_installed() -> bool:
    """Whether Airflow's OpenLineage provider, the only reader of the lineage events Cosmos computes after each dbt
    call, is installed."""
    import importlib.util

    try:
        return importlib.util.find_spec("airflow.providers.openlineage") is not None
    except ModuleNotFoundError:  # no airflow.providers namespace at all
        return False


def _no_lineage_events(*args: object, **kwargs: object) -> bool:
    """Stands in for Cosmos's ``calculate_openlineage_events_completes``: no processor, so no events (Cosmos then
    skips what would use them)."""
    return False


def _before_dbt_task(context: dict) -> None:
    """on_execute_callback of the Cosmos dbt tasks.

    Moves the objects alive now (Airflow, the parsed DAG, dbt's modules) to the permanent generation before dbt
    runs: Cosmos calls gc.collect() after every dbt invocation (to release dbt adapters' semaphores); a full
    collection walks the whole Airflow + dbt heap, ~1.1 s per task on this machine. Frozen, that heap is skipped
    and the collection still frees what the dbt call left behind. The task process ends after the task; under
    dag.test() the frozen objects stay for the test's process, which it does anyway. And the once-per-process dbt
    start-up of include.dbt_runtime: ``speed_up_dbt_adapter_start`` and ``reuse_parsed_project``.

    Cosmos also turns dbt's artifacts into OpenLineage events after every dbt call whenever
    openlineage-integration-common is importable (it is, as a Cosmos dependency): it imports the OpenLineage
    client and parses manifest.json (py-spy: ~0.2 s of each task process under the scheduler, sampled; the tasks'
    durations fell by ~0.1 s). Only Airflow's OpenLineage provider reads those events; without it (this project does
    not install it) the task skips the step. Installing the provider brings it back.
    """
    import gc

    from include.dbt_runtime import reuse_parsed_project, speed_up_dbt_adapter_start

    speed_up_dbt_adapter_start()
    reuse_parsed_project()
    if not openlineage_listener_installed():
        context["task"].calculate_openlineage_events_completes = _no_lineage_events
    gc.freeze()


# Per-task costs of Cosmos's local operator that this project does not use (python -m bench cosmos measures them):
COSMOS_OPERATOR_ARGS = {
    # The DAGs publish their own Assets (include/assets.py); Cosmos's would name the TCP host of the connection.
    "emit_datasets": False,
    # No manifest.json / run_results.json per task (dbt wrote manifest.json twice per call, ~0.5 s). Cosmos's
    # OpenLineage parse of them then finds nothing; partial_parse.msgpack is still written and cached. The
    # relation cache of the selected model's schema only, not of every schema of the project (a task builds one
    # model; dbt looks any other relation up when it needs it): ~0.1 s of a group run (python -m bench cosmos). And
    # no debug log file: dbt writes every query to logs/dbt.log in the task's temporary copy of the project, which
    # Cosmos deletes with it (~45 ms a task; the task log still gets dbt's output).
    "dbt_cmd_global_flags": ["--no-write-json", "--cache-selected-only", "--log-level-file", "none"],
    "on_execute_callback": _before_dbt_task,
}


# Model groups with DAGs of their own (selectors): the market-data DAG, which renders the rest, leaves them out.
PORTFOLIO_SELECTOR = "tag:portfolio"
OWN_DAG_SELECTORS = (PORTFOLIO_SELECTOR,)


def cosmos_task_group_kwargs(conn_id: str = "market_db", execution_mode: str = "local",
                             test_behavior: str = "build", select: tuple[str, ...] = (),
                             exclude: tuple[str, ...] | None = None) -> dict:
    """Project, profile, execution and render config for a Cosmos ``DbtTaskGroup``.

    LoadMode.DBT_MANIFEST renders from the manifest (~0.25 s, no database at parse time); dbt runs in-process
    (dbtRunner). ``execution_mode`` / ``test_behavior`` take Cosmos's enum values (members work too).
    Default: local + build, one ``dbt build --select <model>`` task per model (its unit tests, the model, its data
    tests), measured by ``python -m bench cosmos`` as the fastest mode in which a failing error-severity test fails
    its task and stops every model downstream (after_each: 1.2-1.4x its time, twice the tasks; after_all builds
    every mart before testing; watcher is experimental, slower here, and a retried producer only skips).
    ``select``/``exclude``: dbt selectors for the group; by default every model except ``OWN_DAG_SELECTORS``
    (e.g. ``tag:portfolio``, rendered by ibkr_portfolio_monitor), and nothing excluded when ``select`` is given.
    """
    from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

    mode, tests = ExecutionMode(execution_mode), TestBehavior(test_behavior)
    if mode not in (ExecutionMode.LOCAL, ExecutionMode.WATCHER):
        raise ValueError(f"execution_mode {mode.value!r}: only 'local' and 'watcher' run dbt in-process")
    if mode is ExecutionMode.WATCHER and tests is TestBehavior.BUILD:
        raise ValueError("ExecutionMode.WATCHER runs one `dbt build` already; use after_each, after_all or none")
    if not MANIFEST_PATH.exists():
        raise FileNotFoundError(
            f"{MANIFEST_PATH} is missing: make up, make demo and the Docker build parse it; by hand: "
            "python -c 'from include.dbt_project import ensure_manifest; ensure_manifest()'"
        )
    return {
        "operator_args": dict(COSMOS_OPERATOR_ARGS),
        "project_config": ProjectConfig(dbt_project_path=DBT_PROJECT_DIR, manifest_path=MANIFEST_PATH,
                                        project_name=PROFILE_NAME),
        "profile_config": ProfileConfig(
            profile_name=PROFILE_NAME, target_name="airflow",
            # threads as in profiles.yml, for invocations of many nodes (watcher producer, after_all tests)
            profile_mapping=postgres_profile_mapping(conn_id, schema="analytics", threads=4),
        ),
        "execution_config": ExecutionConfig(execution_mode=mode, invocation_mode=InvocationMode.DBT_RUNNER),
        # Tests with several parents (relationships) run as their own task once all parents are built.
        "render_config": RenderConfig(load_method=LoadMode.DBT_MANIFEST, test_behavior=tests,
                                      should_detach_multiple_parents_tests=True, select=list(select),
                                      exclude=list(exclude if exclude is not None else
                                                   (() if select else OWN_DAG_SELECTORS))),
    }


def dbt_build(market_db_url: str, *, exclude: tuple[str, ...] = OWN_DAG_SELECTORS,
              target_dir: Path | None = None) -> None:
    """``dbt build`` (unit tests, models, data tests) of the market models in-process against ``market_db_url``: the
    same nodes, tests and severities as the ``dbt_market`` Cosmos group (everything but ``exclude``). Incremental
    marts rebuild only symbols with new or changed bars. Target and logs go to ``target_dir`` (default: a temporary
    one), never target/, whose manifest Cosmos renders from. Raises naming the failed nodes."""
    import os
    import tempfile

    from dbt.cli.main import dbtRunner

    from include.dbt_runtime import speed_up_dbt_adapter_start

    speed_up_dbt_adapter_start()
    env = dbt_env(market_db_url)
    saved = {k: os.environ.get(k) for k in env}
    with tempfile.TemporaryDirectory(prefix="dbt-build-") as tmp:
        target = Path(target_dir or tmp)
        args = ["build", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
                "--target-path", str(target), "--log-path", str(target / "logs"), "--quiet"]
        for selector in exclude:
            args += ["--exclude", selector]
        os.environ.update(env)  # profiles.yml reads DBT_*; restored below
        try:
            result = dbtRunner().invoke(args)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    if not result.success:
        failed = [f"{r.node.name}: {r.status}" for r in (result.result or []) if str(r.status) in ("error", "fail")]
        raise RuntimeError(f"dbt build failed: {', '.join(failed) or result.exception}")
