"""A real sqlite MLflow store per test, configured the way tasks see it (``MLFLOW_TRACKING_URI``)."""

from __future__ import annotations

from pathlib import Path

import pytest

TRACKING_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_ARTIFACT_ROOT", "MLFLOW_UI_URL", "MLFLOW_DATA_EXPERIMENT",
                "DEBUG_MODE", "GIT_SHA")  # fmt: skip


@pytest.fixture
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path/mlflow/mlflow.db`` as the tracking store; artifacts land in ``tmp_path/mlflow/artifacts``."""
    for var in TRACKING_ENV:
        monkeypatch.delenv(var, raising=False)
    store = tmp_path / "mlflow"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")
    return store


@pytest.fixture
def mlflow_client(mlflow_store: Path):
    from include.tracking import client

    return client()
