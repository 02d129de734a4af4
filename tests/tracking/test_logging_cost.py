"""What logging a typical run (10 params, 20 metrics, 3 artifacts) costs a task process on the sqlite store.

Prints figures (run with ``-s``); asserts what was logged, never a duration. A task pays the import and
the client once per process, then the run itself; batched vs one call per value is shown side by side.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, time
t0 = time.perf_counter()
from include.tracking import RunLogger, client, end_run, ensure_experiment, start_run
import mlflow  # what the first MLflow call of a task imports anyway
t_import = time.perf_counter()
client()
t_client = time.perf_counter()
ensure_experiment("warm-up")  # a store someone already created (the usual case)
t_warm = time.perf_counter()

params = {f"param_{i}": f"value-{i}" for i in range(10)}
metrics = {f"metric_{i}": i * 1.5 for i in range(20)}

def typical(run_key, batched):
    started = time.perf_counter()
    run_id = start_run("cost", dag_id="bench", run_id=run_key, try_number=1, params=params if batched else None)
    logger = RunLogger(run_id)
    if batched:
        logger.log_metrics(metrics)
    else:
        for k, v in params.items():
            logger.client.log_param(run_id, k, v)
        for k, v in metrics.items():
            logger.client.log_metric(run_id, k, v)
    logger.log_dict({"signals": list(range(50))}, "signals.json")
    logger.log_text("SELECT 1", "query.sql")
    logger.log_rows_sample(["symbol", "close"], [("TSLA", 1.0)] * 100, "sample.csv")
    end_run(run_id, "success")
    return run_id, time.perf_counter() - started

runs = {}
for mode in ("batched", "per_call"):
    times = []
    for i in range(5):
        run_id, seconds = typical(f"{mode}_{i}", mode == "batched")
        times.append(seconds)
    runs[mode] = {"run_id": run_id, "seconds": sorted(times)}
print(json.dumps({"import": t_import - t0, "client": t_client - t_import, "first_query": t_warm - t_client,
                  "runs": runs}))
"""


@pytest.mark.slow
def test_typical_run_cost_on_the_sqlite_store(mlflow_store, mlflow_client):
    mlflow_client.search_experiments()  # the store exists, as it does after the first task ever
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=300,
                         check=True)  # fmt: skip
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    for mode in ("batched", "per_call"):
        run = mlflow_client.get_run(figures["runs"][mode]["run_id"])
        assert len(run.data.params) == 10 and len(run.data.metrics) == 20 and run.info.status == "FINISHED"
        assert {a.path for a in mlflow_client.list_artifacts(run.info.run_id)} == {
            "signals.json", "query.sql", "sample.csv"
        }  # fmt: skip
    batched, per_call = (figures["runs"][m]["seconds"] for m in ("batched", "per_call"))
    print(
        "\nMLflow cost per task process (sqlite store, this machine):"
        f"\n  import include.tracking + mlflow   {figures['import']:.2f} s"
        f"\n  client on an existing store         {figures['client']:.2f} s"
        f"\n  first query (ensure_experiment)     {figures['first_query']:.2f} s"
        f"\n  typical run, batched  (median of 5) {batched[2] * 1000:.0f} ms  (min {batched[0] * 1000:.0f})"
        f"\n  typical run, 1 call per value       {per_call[2] * 1000:.0f} ms  (min {per_call[0] * 1000:.0f})"
    )
