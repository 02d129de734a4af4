"""``scripts/celery_scaleout.py`` as a subprocess: the pipeline on two Celery workers, Ctrl-C, no broker.

Both full runs need the machine's Redis and PostgreSQL (``SCALEOUT_REDIS_URL``, ``SCALEOUT_PG_ADMIN_URL``) and skip
when either is not reachable. The pipeline run (~2 min on an idle 2-core machine, ~5.5 min on a busy one: Airflow
migration, five Airflow processes, 27 tasks) is in the default suite; the Ctrl-C run (~1.5 min) only with
``SCALEOUT_TEST=1``; ``SCALEOUT_TEST=0`` skips both. The no-broker check always runs (seconds).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts import celery_scaleout as scaleout

REPO = Path(__file__).resolve().parents[2]
DAGS = [scaleout.INGEST, scaleout.MODELS, scaleout.TRADE]


def _script(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "scripts.celery_scaleout", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(proc: subprocess.Popen[str], timeout: float) -> str:
    """Its output; on timeout it gets SIGTERM (which it handles like Ctrl-C) so it still stops what it started."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=180)
        pytest.fail(f"celery_scaleout did not finish within {timeout:.0f} s:\n{out[-5000:]}")
    return out


@pytest.fixture
def broker_and_postgres() -> None:
    if os.environ.get("SCALEOUT_TEST") == "0":
        pytest.skip("SCALEOUT_TEST=0: the CeleryExecutor scale-out runs are off")
    if (why := scaleout.redis_reachable()) is not None:
        pytest.skip(f"Redis {scaleout.REDIS_URL} not reachable ({why}); the CeleryExecutor needs it")
    if (why := scaleout.postgres_reachable()) is not None:
        pytest.skip(f"PostgreSQL {scaleout.PG_ADMIN_URL} not reachable ({why})")


def _assert_everything_stopped(out: str) -> None:
    """Every process it started is gone (with its process group), its databases, Redis keys and temp dir too."""
    import psycopg2
    import redis

    pids = [int(pid) for pid in re.findall(r"started [\w-]+ \(pid (\d+)\)", out)]
    assert len(pids) == 5, out[-3000:]  # api-server, dag-processor, worker1, worker2, scheduler
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)
    tag = re.search(r"scaleout_airflow_([0-9a-f]{8})", out).group(1)
    with psycopg2.connect(scaleout.PG_ADMIN_URL) as conn, conn.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (f"scaleout_%_{tag}",))
        assert cur.fetchall() == []
    client = redis.Redis.from_url(scaleout.REDIS_URL)
    assert list(client.scan_iter(match=f"airflow-scaleout-{tag}:*")) == []
    client.close()
    home = re.search(r"AIRFLOW_HOME (\S+)/airflow;", out).group(1)
    assert not Path(home).exists()


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_ingest_dbt_strategy_run_on_both_celery_workers(broker_and_postgres: None) -> None:
    started = time.monotonic()
    proc = _script("--symbols", "TSLA,NVDA,AAPL", "--timeout", "1200")
    out = _finish(proc, timeout=1400)
    assert proc.returncode == 0, out[-5000:]
    lines = [line for line in out.splitlines() if line.startswith(scaleout.SUMMARY_PREFIX)]
    assert lines, out[-5000:]
    summary = json.loads(lines[-1].removeprefix(scaleout.SUMMARY_PREFIX))
    print(f"celery_scaleout took {time.monotonic() - started:.0f} s; summary {summary}")

    assert [(run["dag_id"], run["state"]) for run in summary["runs"]] == [(dag, "success") for dag in DAGS]
    runs = {run["dag_id"]: run for run in summary["runs"]}
    assert runs[scaleout.INGEST]["tasks"] == 3 + 3  # resolve_symbols, fetch_bars per symbol, load_bars, check_symbols
    assert summary["workers_used"] == 2
    assert set(summary["tasks_per_worker"]) == {"worker1", "worker2"}
    assert all(n > 0 for n in summary["tasks_per_worker"].values())
    assert sum(summary["tasks_per_worker"].values()) == sum(run["tasks"] for run in summary["runs"])
    assert 2 <= summary["peak_parallel_tasks"] <= 4  # two workers x concurrency 2
    _assert_everything_stopped(out)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ctrl_c_mid_run_stops_everything_it_started(broker_and_postgres: None) -> None:
    if os.environ.get("SCALEOUT_TEST") != "1":
        pytest.skip("a second scale-out run (~1.5 min, Ctrl-C while ingesting): run it with SCALEOUT_TEST=1")
    proc = _script("--timeout", "600")
    seen = []
    for line in proc.stdout:  # the script bounds itself with --timeout
        seen.append(line)
        if "triggered ibkr_ingest_daily_bars" in line:
            time.sleep(3)  # tasks are queued/running on the workers now
            proc.send_signal(signal.SIGINT)
            break
    out = "".join(seen) + _finish(proc, timeout=240)
    assert proc.returncode == 130, out[-5000:]
    assert "interrupted" in out
    _assert_everything_stopped(out)


def test_without_a_broker_it_stops_with_a_clear_message(unused_port: int) -> None:
    proc = _script(env={"SCALEOUT_REDIS_URL": f"redis://127.0.0.1:{unused_port}/0"})
    out = _finish(proc, timeout=60)
    assert proc.returncode == scaleout.EXIT_NO_BROKER, out
    assert f"needs a Redis broker; redis://127.0.0.1:{unused_port}/0 is not reachable" in out
    assert "throw-away databases" not in out and "started" not in out  # nothing created, nothing started


@pytest.fixture
def unused_port() -> int:
    return scaleout.free_port()
