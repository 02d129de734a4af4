"""Every DAG imports cleanly, serializes (custom timetables registered), follows the house rules,
parses within budget and keeps heavy libraries out of parse time."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_FILES = sorted(p for p in (REPO / "dags").glob("*.py") if not p.name.startswith("_"))
ALLOWED_TAGS = {"ibkr", "ingestion", "dbt", "quality", "trading", "risk", "monitoring", "ml", "backtest", "ops"}
HEAVY_MODULES = ("pandas", "mlflow", "great_expectations", "dbt", "matplotlib", "sklearn", "exchange_calendars",
                 "psycopg2", "numpy")  # fmt: skip


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    from include.dbt_project import ensure_manifest

    ensure_manifest()
    return DagBag(dag_folder=str(REPO / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert len(dagbag.dags) >= len(DAG_FILES)


def test_dag_ids_match_file_stems(dagbag):
    stems = {p.stem for p in DAG_FILES}
    for dag in dagbag.dags.values():
        assert dag.dag_id in stems or dag.fileloc.endswith("_factory.py"), dag.dag_id


def test_dags_serialize_with_registered_timetables(dagbag):
    from airflow.serialization.serialized_objects import DagSerialization

    from include.timetables import ExchangeIntradayTimetable, ExchangeSessionTimetable

    custom = (ExchangeSessionTimetable, ExchangeIntradayTimetable)
    for dag in dagbag.dags.values():
        back = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
        if isinstance(dag.timetable, custom):  # needs the plugin registration to come back
            assert type(back.timetable) is type(dag.timetable)
            assert back.timetable.serialize() == dag.timetable.serialize()


def test_house_rules(dagbag):
    for dag in dagbag.dags.values():
        assert dag.tags and set(dag.tags) <= ALLOWED_TAGS, f"{dag.dag_id}: tags {dag.tags}"
        assert dag.doc_md, f"{dag.dag_id}: needs doc_md"
        assert dag.catchup is False, f"{dag.dag_id}: catchup must be explicit and off"
        for task in dag.tasks:
            assert task.retries >= 1, f"{dag.dag_id}.{task.task_id}: retries"


def test_each_step_output_is_one_xcom(dagbag):
    """A @task returning a dict would push one XCom per key besides the whole (Airflow infers multiple_outputs from
    ``-> dict``): each push is a call to the API server from the task process (~13 ms), and nothing here pulls the
    keys. The trading run's start_mlflow_run pushed twelve."""
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            assert not getattr(task, "multiple_outputs", False), f"{dag.dag_id}.{task.task_id}: multiple_outputs"


def test_ibkr_calls_run_in_the_ibkr_api_pool(dagbag):
    for dag_id in ("ibkr_ingest_daily_bars", "ibkr_ingest_snapshots"):
        dag = dagbag.dags[dag_id]
        fetch = [t for t in dag.tasks if t.task_id.startswith("fetch_")]
        assert fetch and all(t.pool == "ibkr_api" for t in fetch)


def test_parse_time_budget(dagbag):
    # Generous budget per file so the suite is not flaky; `make bench` prints the real figures.
    for stat in dagbag.dagbag_stats:
        seconds = stat.duration.total_seconds()
        assert seconds < 2.0, f"{stat.file} took {seconds:.2f} s to parse"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_no_heavy_imports_at_parse_time(path):
    code = f"""
import importlib.util, json, sys
import airflow.sdk
before = set(sys.modules)
spec = importlib.util.spec_from_file_location("dag_under_test", {str(path)!r})
spec.loader.exec_module(importlib.util.module_from_spec(spec))
print(json.dumps(sorted(set(sys.modules) - before)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    heavy = sorted({m.split(".")[0] for m in loaded} & set(HEAVY_MODULES))
    assert heavy == [], f"{path.name} imports {heavy} at parse time"
