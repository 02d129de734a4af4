"""Fixtures of the deployment tests (helpers in deploy_files.py)."""

from __future__ import annotations

import pytest
import yaml
from deploy_files import COMPOSE, ENV_EXAMPLE, OVERRIDE, SETTINGS, env_file, load


@pytest.fixture(scope="session")
def example_env() -> dict[str, str]:
    return env_file(ENV_EXAMPLE)


@pytest.fixture(scope="session")
def compose(example_env: dict[str, str]) -> dict:
    """docker-compose.yml as `docker compose config` would resolve it with .env.example copied to .env."""
    return load(COMPOSE, example_env)


@pytest.fixture(scope="session")
def override() -> dict:
    return load(OVERRIDE, {})


@pytest.fixture(scope="session")
def airflow_settings() -> dict:
    return yaml.safe_load(SETTINGS.read_text())["airflow"]
