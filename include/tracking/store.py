"""Where runs go: the tracking URI, an explicit artifact root for local stores, one client per process.

Why nothing relies on MLflow's "active run", and lazy imports: docs/tracking.md ("Store").
"""

from __future__ import annotations

import fcntl
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from include.settings import Settings, SettingsError, mask_url, mlflow_tracking_uri

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from include.tracking.rest import RestTracking

_SERVER_SCHEMES = ("http", "https", "databricks", "databricks-uc", "uc")
_DB_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """The explicit URI, else ``MLFLOW_TRACKING_URI``, else the ``mlflow_default`` connection."""
    uri = tracking_uri or mlflow_tracking_uri()
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""
    if scheme not in _SERVER_SCHEMES + _DB_SCHEMES:
        # MLflow 3.17 refuses the file store (./mlruns) outright; say what works instead.
        raise SettingsError(
            f"MLflow tracking URI {mask_url(uri)!r} is not supported: use a tracking server (http://host:5000) "
            "or a database store such as sqlite:////abs/path/mlflow.db"
        )
    if scheme == "sqlite":
        sqlite_path(uri)  # validates: absolute file path only
    return uri


def is_local_store(uri: str) -> bool:
    """True for database URIs MLflow talks to directly (no server decides where artifacts go)."""
    return not uri.lower().startswith(tuple(f"{s}:" for s in _SERVER_SCHEMES))


def sqlite_path(uri: str) -> Path:
    """``sqlite:////abs/mlflow.db`` -> ``/abs/mlflow.db``; relative paths would depend on each task's cwd."""
    path = unquote(urlsplit(uri).path)
    if not path.startswith("//"):
        raise SettingsError(f"use an absolute sqlite path (sqlite:////abs/path/mlflow.db), got {uri!r}")
    return Path(path[1:])


def artifact_root(uri: str) -> str | None:
    """Artifact root for experiments this project creates; None when a tracking server decides.

    A database store's default root is ``./mlruns`` relative to the cwd of whichever task created the
    experiment, so local stores get an explicit one: ``MLFLOW_ARTIFACT_ROOT``, else ``artifacts/`` beside
    the sqlite file (the same root ``make up`` gives ``mlflow server``, so its UI shows these artifacts).
    """
    if not is_local_store(uri):
        return None
    configured = Settings.from_env().mlflow_artifact_root
    if configured:
        return configured if "://" in configured else Path(configured).resolve().as_uri()
    if uri.lower().startswith("sqlite:"):
        return (sqlite_path(uri).parent / "artifacts").as_uri()
    raise SettingsError(
        f"MLflow store {mask_url(uri)!r} is a database: set MLFLOW_ARTIFACT_ROOT (e.g. s3://bucket/mlflow or an "
        "absolute directory) so artifacts do not land in each task's working directory"
    )


@contextmanager
def _sqlite_lock(uri: str) -> Iterator[None]:
    """Serialize first use of a sqlite store across processes: MLflow's table creation/migration races."""
    db = sqlite_path(uri)
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def client(tracking_uri: str | None = None) -> MlflowClient:
    """One ``MlflowClient`` per URI and process; a fresh sqlite store is created under a file lock."""
    return _client(resolve_tracking_uri(tracking_uri))


def rest(tracking_uri: str | None = None) -> RestTracking | None:
    """The REST client for an http(s) tracking URI (include/tracking/rest.py), else None: use ``client``."""
    from include.tracking.rest import rest_client, rest_enabled

    uri = resolve_tracking_uri(tracking_uri)
    return rest_client(uri) if rest_enabled(uri) else None


@lru_cache(maxsize=8)
def _client(uri: str) -> MlflowClient:
    from mlflow import MlflowClient

    if not uri.lower().startswith("sqlite:"):
        return MlflowClient(tracking_uri=uri)
    with _sqlite_lock(uri):
        db = sqlite_path(uri)
        if not db.exists() or db.stat().st_size == 0:
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            # Creating the tables here, with the root, puts the "Default" experiment under the
            # artifact root instead of <cwd>/mlruns.
            SqlAlchemyStore(uri, artifact_root(uri))
        return MlflowClient(tracking_uri=uri)


_UNSAFE_PATH = re.compile(r"[^A-Za-z0-9._-]+")


def ensure_experiment(name: str, *, tracking_uri: str | None = None) -> str:
    """Return the id of experiment ``name``, creating (or restoring) it. Safe when tasks race to create it."""
    uri = resolve_tracking_uri(tracking_uri)
    if (api := rest(uri)) is not None:
        return _ensure_experiment_rest(api, name, artifact_root(uri))
    from mlflow.exceptions import MlflowException

    mlflow_client = client(uri)
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is None:
        location = _artifact_location(artifact_root(uri), name)
        try:
            return mlflow_client.create_experiment(name, artifact_location=location)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            experiment = mlflow_client.get_experiment_by_name(name)  # another task created it meanwhile
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        mlflow_client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def _artifact_location(root: str | None, name: str) -> str | None:
    """The experiment's artifact folder under the store's root (None: the server's default)."""
    return f"{root.rstrip('/')}/{_UNSAFE_PATH.sub('_', name)}" if root else None


def _ensure_experiment_rest(api: RestTracking, name: str, root: str | None) -> str:
    from include.tracking.rest import RestError

    experiment = api.experiment_by_name(name)
    if experiment is None:
        location = _artifact_location(root, name)
        try:
            return api.create_experiment(name, location)
        except RestError as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            experiment = api.experiment_by_name(name)  # another task created it meanwhile
            if experiment is None:
                raise
    if experiment.get("lifecycle_stage") == "deleted":
        api.restore_experiment(experiment["experiment_id"])
    return experiment["experiment_id"]
