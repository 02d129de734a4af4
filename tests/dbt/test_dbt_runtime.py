"""include/dbt_runtime: the dbt invocations of one process share a parsed project only while nothing it was parsed
from changed (files, target schema, vars), and dbt finds the same plugins without its sys.path scan."""

from __future__ import annotations

import shutil

import psycopg2
import pytest

from include import dbt_runtime
from include.dbt_project import COSMOS_OPERATOR_ARGS, DBT_PROJECT_DIR, dbt_env

NO_JSON = COSMOS_OPERATOR_ARGS["dbt_cmd_global_flags"]  # as the Cosmos tasks run dbt: no manifest.json written


@pytest.fixture
def reuse(dbt_parse_reuse_off, monkeypatch):
    """Installs reuse_parsed_project for the test only; counts dbt's parses."""
    from dbt.parser.manifest import ManifestLoader

    parses = []
    full_manifest = ManifestLoader.get_full_manifest.__func__

    def counting(cls, *args, **kwargs):
        parses.append(1)
        return full_manifest(cls, *args, **kwargs)

    monkeypatch.setattr(ManifestLoader, "get_full_manifest", classmethod(counting))
    dbt_runtime.reuse_parsed_project()
    return parses


@pytest.fixture
def project(tmp_path, clean_db, monkeypatch):
    """A copy of the dbt project (to edit) and ``invoke(*args)`` of dbt against the test database."""
    from dbt.cli.main import dbtRunner

    copy = tmp_path / "ibkr_market"
    shutil.copytree(DBT_PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs"))
    for key, value in dbt_env(clean_db).items():
        monkeypatch.setenv(key, value)

    def invoke(*args: str) -> object:
        result = dbtRunner().invoke([*args, "--project-dir", str(copy), "--profiles-dir", str(copy),
                                     "--target-path", str(tmp_path / "target"), "--quiet"])
        assert result.success, result.exception or [(r.node.name, r.message) for r in result.result]
        return result

    return copy, invoke


def _columns(dsn: str, schema: str, table: str) -> list[str]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
                    " ORDER BY ordinal_position", (schema, table))
        return [name for (name,) in cur.fetchall()]


def test_invocations_share_one_parse_until_a_model_file_changes(reuse, project, clean_db):
    copy, invoke = project
    for _ in range(3):
        invoke(*NO_JSON, "run", "--select", "stg_ibkr__daily_bars")
        dbt_runtime.reuse_parsed_project()  # as each Cosmos task's callback calls it again: installed once
    assert len(reuse) == 1
    assert "volume" in _columns(clean_db, "analytics_staging", "stg_ibkr__daily_bars")

    model = copy / "models" / "staging" / "ibkr" / "stg_ibkr__daily_bars.sql"
    model.write_text(model.read_text().replace("    source,\n", "    source,\n    1 as reparsed_probe,\n"))
    invoke(*NO_JSON, "run", "--select", "stg_ibkr__daily_bars")
    assert len(reuse) == 2  # the edited file was parsed, and its SQL is what ran
    assert "reparsed_probe" in _columns(clean_db, "analytics_staging", "stg_ibkr__daily_bars")
    invoke(*NO_JSON, "run", "--select", "stg_ibkr__daily_bars")
    assert len(reuse) == 2


def test_an_edit_of_the_same_size_and_time_parses_again(reuse, project, clean_db):
    """An edit within the file system's time resolution that keeps the size: compared by content, as dbt does."""
    import os

    copy, invoke = project
    model = copy / "models" / "staging" / "same_size_probe.sql"
    model.write_text("select 1 as aaaa\n")
    invoke(*NO_JSON, "run", "--select", "same_size_probe")
    stat = model.stat()
    model.write_text("select 1 as bbbb\n")
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    invoke(*NO_JSON, "run", "--select", "same_size_probe")
    assert len(reuse) == 2
    assert _columns(clean_db, "analytics_staging", "same_size_probe") == ["bbbb"]


def test_a_new_target_schema_or_vars_parse_again(reuse, project, clean_db, monkeypatch):
    _, invoke = project
    invoke(*NO_JSON, "run", "--select", "stg_ibkr__daily_bars")
    monkeypatch.setenv("DBT_SCHEMA", "elsewhere")  # node schemas are fixed at parse time
    invoke(*NO_JSON, "run", "--select", "stg_ibkr__daily_bars")
    assert len(reuse) == 2
    assert _columns(clean_db, "elsewhere_staging", "stg_ibkr__daily_bars")  # not written to analytics_staging
    invoke(*NO_JSON, "run", "--select", "stg_ibkr__daily_bars", "--vars", "{ewm_block: 700}")
    assert len(reuse) == 3


def test_invocations_that_write_the_manifest_still_parse(reuse, project):
    _, invoke = project
    invoke(*NO_JSON, "run", "--select", "stg_ibkr__daily_bars")
    invoke("run", "--select", "stg_ibkr__daily_bars")  # writes manifest.json: dbt's own parse, as without reuse
    assert len(reuse) == 2
    invoke(*NO_JSON, "run", "--select", "stg_ibkr__daily_bars")
    assert len(reuse) == 2  # the kept parse is still this project's


def test_plugin_modules_are_those_dbt_finds_scanning_sys_path(monkeypatch):
    from dbt.plugins.manager import PluginManager

    monkeypatch.setattr(PluginManager, "get_prefixed_modules", PluginManager.get_prefixed_modules)  # restored
    scanned = PluginManager.get_prefixed_modules()
    dbt_runtime.speed_up_dbt_adapter_start()
    assert PluginManager.get_prefixed_modules() == scanned
    assert "dbt_common" in scanned  # the scan finds the dbt_* modules here


def test_a_kept_parse_compiles_afresh_with_ephemeral_models(reuse, project, clean_db):
    """A build compiles nodes in place and marks their ephemeral CTEs injected; the next invocation must inject
    them again (dbt skips a node already marked), so the kept parse is handed out uncompiled."""
    copy, invoke = project
    models = copy / "models" / "staging"
    (models / "eph_probe.sql").write_text("{{ config(materialized='ephemeral') }}\nselect 1 as probe\n")
    (models / "eph_probe_view.sql").write_text("select probe from {{ ref('eph_probe') }}\n")
    for _ in range(2):
        invoke(*NO_JSON, "run", "--select", "eph_probe_view")
    assert len(reuse) == 1
    assert _columns(clean_db, "analytics_staging", "eph_probe_view") == ["probe"]


def test_a_changed_env_var_that_a_model_reads_parses_again(reuse, project, clean_db, monkeypatch):
    copy, invoke = project
    monkeypatch.delenv("PROBE_LABEL", raising=False)
    model = copy / "models" / "staging" / "env_probe.sql"
    model.write_text("select '{{ env_var('PROBE_LABEL', 'unset') }}' as label\n")

    def label() -> str:
        with psycopg2.connect(clean_db) as conn, conn.cursor() as cur:
            cur.execute("SELECT label FROM analytics_staging.env_probe")
            return cur.fetchone()[0]

    for _ in range(2):  # unset both times: dbt recorded its default, still the same
        invoke(*NO_JSON, "run", "--select", "env_probe")
    assert (len(reuse), label()) == (1, "unset")
    monkeypatch.setenv("PROBE_LABEL", "set")
    invoke(*NO_JSON, "run", "--select", "env_probe")
    assert (len(reuse), label()) == (2, "set")


_TASK_PROCESS = """
import gc, os, sys
from dbt.cli.main import dbtRunner
from dbt.adapters.factory import reset_adapters
from include import dbt_runtime
dbt_runtime.reuse_parsed_project()
result = dbtRunner().invoke([*sys.argv[1:]])
reset_adapters(); gc.collect()  # what Cosmos does after each dbt call
print("success" if result.success else "failed", flush=True)
os._exit(0)  # as Airflow ends a task process
"""


def test_a_kept_parse_leaves_no_semaphore_behind_at_a_task_process_exit(project, tmp_path):
    """Airflow ends task processes with os._exit; a multiprocessing lock still alive then is reported by Python's
    resource tracker ("leaked semaphore objects") in the task log."""
    import os
    import subprocess
    import sys

    copy, _ = project
    args = [*NO_JSON, "run", "--select", "stg_ibkr__daily_bars", "--project-dir", str(copy), "--profiles-dir",
            str(copy), "--target-path", str(tmp_path / "target"), "--quiet"]
    done = subprocess.run([sys.executable, "-c", _TASK_PROCESS, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(DBT_PROJECT_DIR.parents[1])})
    assert done.stdout.strip().splitlines()[-1] == "success", done.stderr
    assert "leaked semaphore" not in done.stderr
