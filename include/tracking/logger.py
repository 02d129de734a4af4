"""``RunLogger``: params, metrics, tags and artifacts bound to one MLflow run id.

Logging from any process and batching: docs/tracking.md ("Logger").
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from include.tracking.store import client, rest

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

    from include.tracking.rest import RestTracking

# MLflow's limits (mlflow.utils.validation): param values 6000 chars, tag values 8000, per log_batch
# 100 params+tags, 1000 metrics, 1000 entities.
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000
_MAX_PARAMS_TAGS = 100
_MAX_METRICS = 1000


def stringify(value: Any) -> str:
    """Param/tag text: JSON for containers (unambiguous), ``str`` for everything else."""
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return json.dumps(items, default=str, sort_keys=isinstance(value, Mapping))
    return str(value)


def _to_float(key: str, value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"metric {key!r} must be a number, got {value!r}") from None
    return number


class RunLogger:
    """Logs to an existing run; every method is safe to call from any process holding the run id."""

    def __init__(self, run_id: str, *, tracking_uri: str | None = None, artifact_uri: str | None = None) -> None:
        """``artifact_uri``: the run's, when the caller has it (``run_artifact_uri`` where the run started): the
        REST path then writes artifacts without first asking the server for the run (one call per process)."""
        if not run_id:
            raise ValueError("RunLogger needs an MLflow run id (start_run returns one)")
        self.run_id = run_id
        self.tracking_uri = tracking_uri
        self.artifact_uri = artifact_uri

    @property
    def client(self) -> MlflowClient:
        return client(self.tracking_uri)

    @property
    def rest(self) -> RestTracking | None:
        """The REST path for http(s) tracking URIs (no ``import mlflow``); None: go through ``client``."""
        api = rest(self.tracking_uri)
        if api is not None and self.artifact_uri:
            api.remember_artifact_uri(self.run_id, self.artifact_uri)
        return api

    def logged_params(self) -> dict[str, str]:
        api = self.rest
        return api.get_run(self.run_id)["params"] if api else dict(self.client.get_run(self.run_id).data.params)

    def logged_metrics(self) -> dict[str, float]:
        api = self.rest
        return api.get_run(self.run_id)["metrics"] if api else dict(self.client.get_run(self.run_id).data.metrics)

    def log_batch(
        self,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        *,
        step: int | None = None,
        on_param_change: Literal["raise", "tag"] = "raise",
        logged_params: Mapping[str, str] | None = None,
    ) -> None:
        """Params, metrics and tags in one round trip (more only past MLflow's batch limits).

        MLflow params are write-once. A param already logged with the same value is skipped (retries);
        a different value raises, or with ``on_param_change="tag"`` goes to tag ``param.<key>`` instead
        (a retried task whose outcome changed, e.g. a validation status). ``logged_params``: the run's params
        when the caller knows them (a run it just created has none), instead of asking the store.
        """
        param_values = {k: stringify(v) for k, v in (params or {}).items()}
        tag_values = {k: stringify(v) for k, v in (tags or {}).items() if v is not None}
        overflow: dict[str, str] = {}
        for key, text in param_values.items():
            if len(text) > MAX_PARAM_LENGTH:
                note = f"... [truncated; full value in artifact params/{key}.txt]"
                param_values[key] = text[: MAX_PARAM_LENGTH - len(note)] + note
                overflow[key] = text
        if param_values:
            logged = self.logged_params() if logged_params is None else logged_params
            changed = {k: v for k, v in param_values.items() if k in logged and logged[k] != v}
            if changed and on_param_change == "raise":
                raise ValueError(
                    f"MLflow params are write-once; run {self.run_id} already has different values for "
                    f"{sorted(changed)}"
                )
            tag_values.update({f"param.{k}": v for k, v in changed.items()})
            param_values = {k: v for k, v in param_values.items() if k not in logged}
        now = int(time.time() * 1000)
        metric_list = [
            (key, _to_float(key, value), now, step or 0) for key, value in (metrics or {}).items() if value is not None
        ]
        small = [("param", k, v) for k, v in param_values.items()] + [
            ("tag", k, v[:MAX_TAG_LENGTH]) for k, v in tag_values.items()
        ]
        api = self.rest
        while small or metric_list:
            batch_small, small = small[:_MAX_PARAMS_TAGS], small[_MAX_PARAMS_TAGS:]
            batch_metrics, metric_list = metric_list[:_MAX_METRICS], metric_list[_MAX_METRICS:]
            batch_params = [(k, v) for kind, k, v in batch_small if kind == "param"]
            batch_tags = [(k, v) for kind, k, v in batch_small if kind == "tag"]
            if api is not None:
                api.log_batch(self.run_id, batch_metrics, batch_params, batch_tags)
                continue
            from mlflow.entities import Metric, Param, RunTag

            self.client.log_batch(
                self.run_id,
                metrics=[Metric(*m) for m in batch_metrics],
                params=[Param(k, v) for k, v in batch_params],
                tags=[RunTag(k, v) for k, v in batch_tags],
            )
        for key, text in overflow.items():
            self.log_text(text, f"params/{key}.txt")

    def log_params(self, params: Mapping[str, Any], *, on_change: Literal["raise", "tag"] = "raise") -> None:
        self.log_batch(params=params, on_param_change=on_change)

    def log_metrics(self, metrics: Mapping[str, Any], *, step: int | None = None) -> None:
        """Numbers (bools as 0/1; None skipped). NaN is kept: MLflow stores it and it flags a bad value."""
        self.log_batch(metrics=metrics, step=step)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.log_batch(tags=tags)

    def log_text(self, text: str, artifact_file: str) -> None:
        api = self.rest
        if api is not None and api.can_write(self.run_id):
            api.put_bytes(self.run_id, text.encode(), artifact_file)
        else:
            self.client.log_text(self.run_id, text, artifact_file)

    def log_dict(self, obj: Any, artifact_file: str) -> None:
        """JSON (dates, decimals and paths as strings); ``.yaml``/``.yml`` names go through MLflow as YAML."""
        if artifact_file.endswith((".yaml", ".yml")):
            self.client.log_dict(self.run_id, obj, artifact_file)
        else:
            self.log_text(json.dumps(obj, indent=2, default=str, sort_keys=True), artifact_file)

    def log_file(self, path: str | Path, artifact_path: str | None = None) -> None:
        """A file, or a directory with everything in it (kept under its own name)."""
        local = Path(path)
        api = self.rest
        if api is not None and local.exists() and api.can_write(self.run_id):
            api.put_file(self.run_id, local, artifact_path)
        elif local.is_dir():
            target = f"{artifact_path}/{local.name}" if artifact_path else local.name
            self.client.log_artifacts(self.run_id, str(local), target)
        elif local.is_file():
            self.client.log_artifact(self.run_id, str(local), artifact_path)
        else:
            raise FileNotFoundError(f"no file or directory to log at {local}")

    def log_dataframe_sample(self, df: pd.DataFrame, artifact_file: str, *, rows: int = 100) -> None:
        """The first ``rows`` rows as CSV (a sample to eyeball, not a data export)."""
        self.log_text(df.head(rows).to_csv(index=False), artifact_file)

    def log_rows_sample(
        self, columns: Sequence[str], rows: Iterable[Sequence[Any]], artifact_file: str, *, limit: int = 100
    ) -> int:
        """Rows from a DB cursor as CSV, without pandas; returns how many were written."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        count = 0
        for row in rows:
            if count >= limit:
                break
            writer.writerow(["" if v is None else v for v in row])
            count += 1
        self.log_text(buffer.getvalue(), artifact_file)
        return count
