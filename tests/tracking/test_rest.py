"""The REST path (http tracking URI) against a real ``mlflow server``: one run per DAG run, params write-once, metrics
(NaN kept), tags, JSON and file artifacts through the server's artifact proxy and into a file:// root, run end; the
task process never imports mlflow. MlflowClient reads everything back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scripts.devstack import free_port, start_mlflow_server

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, sys, time
from pathlib import Path
from include.tracking import RunLogger, end_run, start_run
from include.tracking.rest import rest_client
import os
folder = Path(sys.argv[1])
location = sys.argv[2] or None
api = rest_client(os.environ["MLFLOW_TRACKING_URI"])
if location and api.experiment_by_name("rest-file") is None:
    api.create_experiment("rest-file", location)
experiment = "rest-file" if location else "rest-proxy"
run_id = start_run(experiment, dag_id="dag", run_id="manual__1", try_number=1, params={"a": 1, "b": [1, 2]})
again = start_run(experiment, dag_id="dag", run_id="manual__1", try_number=2, params={"a": 1})
logger = RunLogger(run_id)
logger.log_batch(metrics={"x": 1.5, "bad": float("nan"), "flag": True}, tags={"t": "v"})
logger.log_dict({"k": [1, 2]}, "signals/signals.json")
logger.log_file(folder / "A.png", "charts")
logger.log_file(folder / "nested", "dir")
try:
    logger.log_batch(params={"a": 2})
    changed = "accepted"
except ValueError:
    changed = "refused"
metrics = logger.logged_metrics()
end_run(run_id, "failed")
print(json.dumps({"run_id": run_id, "again": again, "changed": changed, "x": metrics["x"],
                  "mlflow_imported": "mlflow" in sys.modules}))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    work = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    proc = start_mlflow_server(port, f"sqlite:///{work / 'mlflow.db'}", work / "server.log",
                               artifacts_destination=work / "proxied")
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(work / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url, work
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.parametrize("root", ["proxy", "file"])
def test_rest_logging_round_trip(server: tuple[str, Path], tmp_path: Path, root: str) -> None:
    import mlflow

    url, work = server
    (tmp_path / "A.png").write_bytes(b"\x89PNG")
    (tmp_path / "nested" / "sub").mkdir(parents=True)
    (tmp_path / "nested" / "sub" / "B.txt").write_text("b")
    location = (work / "file-root").as_uri() if root == "file" else ""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update({"MLFLOW_TRACKING_URI": url, "PYTHONPATH": str(REPO)})
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), location], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["again"] == result["run_id"]  # one MLflow run per DAG run
    assert result["changed"] == "refused" and result["x"] == 1.5
    assert result["mlflow_imported"] is False

    client = mlflow.MlflowClient(url)
    run = client.get_run(result["run_id"])
    assert run.info.status == "FAILED" and run.info.end_time is not None
    assert run.data.params == {"a": "1", "b": "[1, 2]"}
    assert run.data.metrics["x"] == 1.5 and run.data.metrics["flag"] == 1.0
    assert run.data.metrics["bad"] != run.data.metrics["bad"]  # NaN
    assert run.data.tags["t"] == "v" and run.data.tags["dag_id"] == "dag" and run.data.tags["try_number"] == "2"
    assert run.info.artifact_uri.startswith("file:" if root == "file" else "mlflow-artifacts:")
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"charts", "dir", "signals"}
    assert [a.path for a in client.list_artifacts(run.info.run_id, "charts")] == ["charts/A.png"]
    assert [a.path for a in client.list_artifacts(run.info.run_id, "dir/nested/sub")] == ["dir/nested/sub/B.txt"]
    signals = Path(client.download_artifacts(run.info.run_id, "signals/signals.json", str(tmp_path / "dl")))
    assert json.loads(signals.read_text()) == {"k": [1, 2]}


HANDED_ON = r"""
import json, os, sys
from include.tracking import RunLogger, end_run, run_artifact_uri, start_run
from include.tracking.rest import rest_client

uri = os.environ["MLFLOW_TRACKING_URI"]
calls = []
rest_client(uri)._http.event_hooks["request"].append(lambda request: calls.append(request.url.path))
if sys.argv[1] == "start":  # the first task: starts the run, hands on its id and artifact URI
    run_id = start_run("rest-handed-on", dag_id="dag", run_id=sys.argv[2], try_number=1, params={"a": 1})
    print(json.dumps({"run_id": run_id, "artifact_uri": run_artifact_uri(run_id), "calls": calls}))
    sys.exit()
# a later task's process: logs an artifact, then (as end_mlflow_run) ends the run and logs after its end
run_id, artifact_uri = sys.argv[2], sys.argv[3] or None
RunLogger(run_id, artifact_uri=artifact_uri).log_dict({"k": 1}, "risk/report.json")
end_run(run_id, "success")
RunLogger(run_id).log_batch(metrics={"mlflow_share": 0.05})
print(json.dumps({"calls": calls}))
"""


@pytest.mark.parametrize("handed_on", [True, False])
def test_a_task_given_the_artifact_uri_uploads_without_looking_up_the_run(server: tuple[str, Path],
                                                                          handed_on: bool) -> None:
    """start_mlflow_run hands the run's artifact URI on (TradingRun.mlflow_artifact_uri): a later task process
    uploads without a ``runs/get`` first; the end task may log its last metrics after the run's end."""
    import mlflow

    url, _ = server
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update({"MLFLOW_TRACKING_URI": url, "PYTHONPATH": str(REPO)})

    def run(*args: str) -> dict:
        out = subprocess.run([sys.executable, "-c", HANDED_ON, *args], env=env, cwd=REPO, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    started = run("start", f"manual__handed_on_{handed_on}")
    assert started["artifact_uri"].startswith("mlflow-artifacts:")
    # a new run has no params to compare against: search, create, log-batch (after the experiment); no runs/get
    assert [c.rsplit("/", 1)[-1] for c in started["calls"] if "/runs/" in c] == ["search", "create", "log-batch"]
    calls = run("task", started["run_id"], started["artifact_uri"] if handed_on else "")["calls"]
    uploads = [c for c in calls if c.startswith("/api/2.0/mlflow-artifacts/")]
    assert len(uploads) == 1 and uploads[0].endswith("/risk/report.json")
    before_upload = calls[:calls.index(uploads[0])]
    assert ("/api/2.0/mlflow/runs/get" in before_upload) is not handed_on

    client = mlflow.MlflowClient(url)
    run_info = client.get_run(started["run_id"])
    assert run_info.info.status == "FINISHED" and run_info.data.metrics["mlflow_share"] == 0.05
    assert run_info.data.params == {"a": "1"}
    assert [a.path for a in client.list_artifacts(started["run_id"], "risk")] == ["risk/report.json"]
