"""MLflow's tracking REST API over httpx, for http(s) tracking URIs (other URIs use MlflowClient).

Why, and how artifact roots are handled: docs/tracking.md ("REST client").
"""

from __future__ import annotations

import math
import os
import shutil
import time
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx

from include.tls import verify_option

_API = "/api/2.0/mlflow"
_ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


class RestError(RuntimeError):
    """An MLflow REST call failed; ``error_code`` is MLflow's (RESOURCE_DOES_NOT_EXIST, ...)."""

    def __init__(self, message: str, error_code: str | None = None, status_code: int | None = None) -> None:
        super().__init__(message)
        self.error_code, self.status_code = error_code, status_code


def rest_enabled(uri: str) -> bool:
    """http(s) URIs, unless ``MLFLOW_REST_LOGGING=0`` (then every call goes through MlflowClient)."""
    if os.environ.get("MLFLOW_REST_LOGGING", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return uri.lower().startswith(("http://", "https://"))


def _number(value: float) -> float | str:
    """Protobuf JSON spells non-finite doubles as strings; MLflow stores NaN (it flags a bad value)."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


@lru_cache(maxsize=4)
def rest_client(uri: str) -> RestTracking:
    return RestTracking(uri)


class RestTracking:
    """The calls the project makes (experiments, runs, log-batch, artifacts), as MLflow's REST API defines them.
    Auth like MlflowClient: MLFLOW_TRACKING_TOKEN (bearer) or MLFLOW_TRACKING_USERNAME/PASSWORD (basic);
    MLFLOW_TRACKING_INSECURE_TLS=true skips certificate checks."""

    def __init__(self, uri: str) -> None:
        self.base = uri.rstrip("/")
        headers = {}
        if token := os.environ.get("MLFLOW_TRACKING_TOKEN"):
            headers["Authorization"] = f"Bearer {token}"
        user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
        insecure = os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true"
        self._http = httpx.Client(base_url=self.base, headers=headers, timeout=120.0,
                                  verify=verify_option(not insecure), auth=(user, password or "") if user else None)
        self._artifact_uris: dict[str, str] = {}

    # ------------------------------------------------------------ core
    def call(self, method: str, endpoint: str, *, params: dict[str, Any] | None = None,
             json: Any = None) -> dict[str, Any]:
        for attempt in range(4):  # MlflowClient retries 429/5xx too
            resp = self._http.request(method, f"{_API}/{endpoint}", params=params, json=json)
            if resp.status_code not in (429, 502, 503, 504) or attempt == 3:
                break
            time.sleep(0.5 * 2**attempt)
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                body = {}
            raise RestError(f"MLflow {method} {endpoint}: HTTP {resp.status_code} {body.get('message') or resp.text}",
                            body.get("error_code"), resp.status_code)
        return resp.json() if resp.content else {}

    # ------------------------------------------------------------ experiments and runs
    def experiment_by_name(self, name: str) -> dict[str, Any] | None:
        try:
            return self.call("GET", "experiments/get-by-name", params={"experiment_name": name})["experiment"]
        except RestError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise

    def create_experiment(self, name: str, artifact_location: str | None = None) -> str:
        body = {"name": name, **({"artifact_location": artifact_location} if artifact_location else {})}
        return self.call("POST", "experiments/create", json=body)["experiment_id"]

    def restore_experiment(self, experiment_id: str) -> None:
        self.call("POST", "experiments/restore", json={"experiment_id": experiment_id})

    def search_run_ids(self, experiment_id: str, filter_string: str, order_by: list[str]) -> list[str]:
        body = {"experiment_ids": [experiment_id], "filter": filter_string, "max_results": 1, "order_by": order_by}
        return [r["info"]["run_id"] for r in self.call("POST", "runs/search", json=body).get("runs", [])]

    def create_run(self, experiment_id: str, run_name: str, tags: dict[str, str]) -> str:
        body = {"experiment_id": experiment_id, "run_name": run_name, "start_time": int(time.time() * 1000),
                "tags": [{"key": k, "value": v} for k, v in tags.items()]}
        info = self.call("POST", "runs/create", json=body)["run"]["info"]
        self._artifact_uris[info["run_id"]] = info["artifact_uri"]
        return info["run_id"]

    def get_run(self, run_id: str) -> dict[str, Any]:
        """``{"info": {...}, "params": {k: v}, "metrics": {k: latest}, "tags": {k: v}}``."""
        run = self.call("GET", "runs/get", params={"run_id": run_id})["run"]
        data = run.get("data", {})
        self._artifact_uris[run_id] = run["info"]["artifact_uri"]
        return {"info": run["info"], "params": {p["key"]: p["value"] for p in data.get("params", [])},
                "metrics": {m["key"]: float(m["value"]) for m in data.get("metrics", [])},
                "tags": {t["key"]: t["value"] for t in data.get("tags", [])}}

    def update_run(self, run_id: str, status: str, *, terminated: bool = False) -> None:
        body: dict[str, Any] = {"run_id": run_id, "status": status}
        if terminated:
            body["end_time"] = int(time.time() * 1000)
        self.call("POST", "runs/update", json=body)

    def log_batch(self, run_id: str, metrics: list[tuple[str, float, int, int]], params: list[tuple[str, str]],
                  tags: list[tuple[str, str]]) -> None:
        self.call("POST", "runs/log-batch", json={
            "run_id": run_id,
            "metrics": [{"key": k, "value": _number(v), "timestamp": ts, "step": step} for k, v, ts, step in metrics],
            "params": [{"key": k, "value": v} for k, v in params],
            "tags": [{"key": k, "value": v} for k, v in tags],
        })  # fmt: skip

    # ------------------------------------------------------------ artifacts
    def remember_artifact_uri(self, run_id: str, uri: str) -> None:
        """The run's artifact URI as its creator saw it: no ``runs/get`` before this process's first upload."""
        self._artifact_uris.setdefault(run_id, uri)

    def artifact_uri(self, run_id: str) -> str:
        if run_id not in self._artifact_uris:
            self.get_run(run_id)
        return self._artifact_uris[run_id]

    def _proxied(self, root: str) -> str | None:
        """The proxy URL prefix for an ``mlflow-artifacts:`` root (the tracking server's own, or its host)."""
        parts = urlsplit(root)
        if parts.scheme != "mlflow-artifacts":
            return None
        base = f"{urlsplit(self.base).scheme}://{parts.netloc}" if parts.netloc else self.base
        return f"{base}{_ARTIFACTS}/{quote(parts.path.lstrip('/'))}"

    def can_write(self, run_id: str) -> bool:
        """True when this client writes the run's artifacts itself (file:// or the server's artifact proxy)."""
        root = self.artifact_uri(run_id)
        return root.startswith("file:") or self._proxied(root) is not None

    def put_bytes(self, run_id: str, data: bytes, artifact_file: str) -> None:
        root = self.artifact_uri(run_id)
        if root.startswith("file:"):
            target = Path(unquote(urlsplit(root).path)) / artifact_file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            return
        url = f"{self._proxied(root)}/{quote(artifact_file)}"
        resp = self._http.put(url, content=data)
        if resp.status_code >= 400:
            raise RestError(f"MLflow artifact upload {artifact_file}: HTTP {resp.status_code} {resp.text[:300]}",
                            status_code=resp.status_code)

    def put_file(self, run_id: str, local: Path, artifact_path: str | None = None) -> None:
        """A file or a directory (kept under its own name), like ``MlflowClient.log_artifact(s)``."""
        prefix = f"{artifact_path.strip('/')}/" if artifact_path else ""
        root = self.artifact_uri(run_id)
        if local.is_dir():
            for path in sorted(p for p in local.rglob("*") if p.is_file()):
                rel = path.parent.relative_to(local).as_posix()
                self.put_file(run_id, path, f"{prefix}{local.name}" + ("" if rel == "." else f"/{rel}"))
            return
        if root.startswith("file:"):
            target = Path(unquote(urlsplit(root).path)) / prefix / local.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local, target)
            return
        self.put_bytes(run_id, local.read_bytes(), f"{prefix}{local.name}")
