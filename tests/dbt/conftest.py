"""Run the real dbt project in-process against the test database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from include.dbt_project import DBT_PROJECT_DIR, dbt_env


@pytest.fixture
def dbt(clean_db, tmp_path_factory, monkeypatch):
    """``dbt("build")`` -> (success, results); DBT_* point at this session's clean database."""
    from dbt.cli.main import dbtRunner

    for key, value in dbt_env(clean_db).items():
        monkeypatch.setenv(key, value)
    target = tmp_path_factory.mktemp("dbt-target")

    def _run(*args: str):
        res = dbtRunner().invoke([*args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir",
                                  str(DBT_PROJECT_DIR), "--target-path", str(target), "--log-path",
                                  str(Path(target) / "logs"), "--quiet"])
        return res.success, res.result

    return _run
