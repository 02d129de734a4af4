"""Tracking URI resolution and experiments on a real sqlite store (artifact root, races, restore)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from include.settings import SettingsError
from include.tracking import artifact_root, ensure_experiment, resolve_tracking_uri

REPO = Path(__file__).resolve().parents[2]


def test_experiment_gets_an_explicit_artifact_location_beside_the_store(mlflow_store, mlflow_client):
    experiment_id = ensure_experiment("ibkr/stock data")
    experiment = mlflow_client.get_experiment(experiment_id)
    assert experiment.artifact_location == (mlflow_store / "artifacts" / "ibkr_stock_data").as_uri()
    # The fresh store's Default experiment too: not <cwd>/mlruns.
    default = mlflow_client.get_experiment("0")
    assert default.artifact_location == (mlflow_store / "artifacts" / "0").as_uri()
    assert ensure_experiment("ibkr/stock data") == experiment_id


def test_deleted_experiment_is_restored_not_duplicated(mlflow_store, mlflow_client):
    experiment_id = ensure_experiment("to-delete")
    mlflow_client.delete_experiment(experiment_id)
    assert ensure_experiment("to-delete") == experiment_id
    assert mlflow_client.get_experiment(experiment_id).lifecycle_stage == "active"


@pytest.mark.slow
def test_concurrent_first_use_of_a_fresh_store_yields_one_experiment(mlflow_store):
    # Unlocked, parallel processes race on MLflow's table creation ("table experiments already exists").
    assert not (mlflow_store / "mlflow.db").exists()
    code = "from include.tracking import ensure_experiment; print(ensure_experiment('race'))"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for _ in range(3)
    ]  # fmt: skip
    results = [proc.communicate(timeout=120) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), [err[-2000:] for _, err in results]
    ids = {out.strip().splitlines()[-1] for out, _ in results}
    assert len(ids) == 1
    from include.tracking import client

    names = [e.name for e in client().search_experiments()]
    assert names.count("race") == 1


def test_explicit_artifact_root_wins(mlflow_store, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_ARTIFACT_ROOT", str(tmp_path / "elsewhere"))
    assert artifact_root(resolve_tracking_uri()) == (tmp_path / "elsewhere").as_uri()


def test_tracking_servers_choose_their_own_artifact_root():
    assert artifact_root("http://127.0.0.1:5500") is None


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("./mlruns", "not supported"),
        ("file:///tmp/mlruns", "not supported"),
        ("sqlite:///relative.db", "absolute sqlite path"),
    ],
)
def test_unusable_tracking_uris_are_refused_clearly(uri, message):
    with pytest.raises(SettingsError, match=message):
        resolve_tracking_uri(uri)


def test_database_store_without_artifact_root_is_an_error(monkeypatch):
    monkeypatch.delenv("MLFLOW_ARTIFACT_ROOT", raising=False)
    with pytest.raises(SettingsError, match="MLFLOW_ARTIFACT_ROOT"):
        artifact_root("postgresql://mlflow:pw@db/mlflow")


def test_no_configured_store_is_an_error_not_a_silent_default(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_MLFLOW_DEFAULT", raising=False)
    with pytest.raises(SettingsError, match="MLFLOW_TRACKING_URI"):
        resolve_tracking_uri()


def test_connection_fills_in_when_the_env_var_is_unset(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", '{"conn_type": "http", "host": "http://mlflow:5000"}')
    assert resolve_tracking_uri() == "http://mlflow:5000"
