"""Fixtures of the ML tests: an MLflow store with a registered-model name of its own per test."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def model_name(monkeypatch: pytest.MonkeyPatch, session_mlflow_uri: str) -> str:
    """A registered-model name of this test's own in the session's MLflow store (versions start at 1)."""
    name = f"ibkr_signal_direction_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", session_mlflow_uri)
    monkeypatch.setenv("ML_MODEL_NAME", name)
    return name
