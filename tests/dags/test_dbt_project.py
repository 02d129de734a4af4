"""``cosmos_task_group_kwargs``: execution mode and test behaviour reach the rendered Cosmos task group."""

from datetime import datetime

import pytest
from airflow.sdk import DAG  # before cosmos: importing cosmos.constants first is a circular import
from cosmos import DbtTaskGroup
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

from include.dbt_project import cosmos_task_group_kwargs, ensure_manifest


@pytest.fixture(scope="module", autouse=True)
def manifest():
    return ensure_manifest()


def _render(**kwargs) -> dict[str, object]:
    with DAG("render_dbt", schedule=None, start_date=datetime(2025, 1, 2)) as dag:
        DbtTaskGroup(group_id="dbt_market", **cosmos_task_group_kwargs(**kwargs))
    return dag.task_dict


def test_defaults_build_each_model_with_its_tests_in_process():
    kwargs = cosmos_task_group_kwargs()
    assert kwargs["execution_config"].execution_mode is ExecutionMode.LOCAL
    assert kwargs["execution_config"].invocation_mode is InvocationMode.DBT_RUNNER
    assert kwargs["render_config"].load_method is LoadMode.DBT_MANIFEST
    assert kwargs["render_config"].test_behavior is TestBehavior.BUILD
    assert kwargs["profile_config"].profile_mapping.conn_id == "market_db"
    tasks = _render()
    build = tasks["dbt_market.fct_daily_indicators_model_build"]
    assert type(build).__name__ == "DbtBuildLocalOperator"
    assert build.downstream_task_ids >= {"dbt_market.fct_latest_features_model_build"}
    assert not any(t.endswith((".run", ".test")) for t in tasks)
    # the relationships test has two parents: its own task, after both
    (rel,) = [t for t in tasks.values() if t.task_id.startswith("dbt_market.relationships_")]
    assert rel.upstream_task_ids == {"dbt_market.fct_daily_indicators_model_build",
                                     "dbt_market.stg_ibkr__daily_bars_model_build"}


def test_after_each_renders_a_test_task_after_each_model():
    tasks = _render(test_behavior="after_each")
    assert type(tasks["dbt_market.fct_daily_indicators.run"]).__name__ == "DbtRunLocalOperator"
    assert type(tasks["dbt_market.fct_daily_indicators.test"]).__name__ == "DbtTestLocalOperator"
    assert tasks["dbt_market.fct_daily_indicators.test"].downstream_task_ids >= {"dbt_market.fct_latest_features.run"}


def test_watcher_renders_one_producer_and_a_sensor_per_model():
    tasks = _render(execution_mode=ExecutionMode.WATCHER, test_behavior=TestBehavior.AFTER_EACH)
    assert type(tasks["dbt_market.dbt_producer_watcher"]).__name__ == "DbtProducerWatcherOperator"
    assert type(tasks["dbt_market.fct_daily_indicators.run"]).__name__ == "DbtRunWatcherOperator"
    assert type(tasks["dbt_market.fct_daily_indicators.test"]).__name__ == "DbtTestWatcherOperator"


@pytest.mark.parametrize(("mode", "tests", "message"), [
    ("watcher", "build", "runs one `dbt build` already"),
    ("kubernetes", "after_each", "only 'local' and 'watcher'"),
    ("local", "after_every", "is not a valid TestBehavior"),
])
def test_unsupported_combinations_are_refused(mode, tests, message):
    with pytest.raises(ValueError, match=message):
        cosmos_task_group_kwargs(execution_mode=mode, test_behavior=tests)


def test_the_manifest_is_replaced_whole_and_kept_when_parsing_fails(tmp_path, monkeypatch):
    """ensure_manifest parses beside target/ and moves the result in: a failed parse leaves the manifest Cosmos
    renders from as it was, and no scratch directory is left behind either way."""
    import json
    import shutil

    from include import dbt_project

    project = tmp_path / "ibkr_market"
    shutil.copytree(dbt_project.DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    monkeypatch.setattr(dbt_project, "DBT_PROJECT_DIR", project)
    monkeypatch.setattr(dbt_project, "MANIFEST_PATH", project / "target" / "manifest.json")
    path = dbt_project.ensure_manifest(force=True)
    assert path == project / "target" / "manifest.json"
    assert "model.ibkr_market.fct_daily_indicators" in json.loads(path.read_text())["nodes"]
    before = path.read_bytes()
    (project / "models" / "marts" / "broken.sql").write_text("select {{ this is not jinja }}")
    with pytest.raises(RuntimeError, match="dbt parse failed"):
        dbt_project.ensure_manifest(force=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in (project / "target").iterdir()) == ["manifest.json", "partial_parse.msgpack"]


def test_faster_adapter_start_names_flag_sources_as_dbt_does(monkeypatch):
    """speed_up_dbt_adapter_start replaces dbt-common's inspect.stack() walk; the flags' sources stay the same."""
    from dbt_common.behavior_flags import Behavior, BehaviorFlagRendered

    from include.dbt_runtime import speed_up_dbt_adapter_start

    monkeypatch.setattr(BehaviorFlagRendered, "_default_source", BehaviorFlagRendered.__dict__["_default_source"])
    flags = [{"name": "some_flag", "default": False, "docs_url": "https://example.invalid"},
             {"name": "named_flag", "default": True, "docs_url": "https://example.invalid", "source": "dbt-x"}]

    def sources() -> list[str]:  # flags registered from this module, as an adapter registers its own
        behavior = Behavior(flags, {})
        return [behavior.some_flag._behavior_change_event.flag_source,
                behavior.named_flag._behavior_change_event.flag_source]

    before = sources()
    speed_up_dbt_adapter_start()
    assert BehaviorFlagRendered._default_source.__name__ == "_calling_module"  # no inspect.stack() any more
    assert sources() == before == [__name__, "dbt-x"]


def test_dbt_tasks_skip_lineage_events_only_without_the_openlineage_provider(monkeypatch, dbt_parse_reuse_off):
    """Cosmos computes OpenLineage events after every dbt call; only Airflow's OpenLineage provider reads them.
    The same callback lets the group's later dbt tasks in the process reuse its parse."""
    import gc
    import importlib.util
    from datetime import datetime

    from airflow.sdk import DAG
    from cosmos import DbtTaskGroup
    from dbt.cli import requires

    from include import dbt_project, dbt_runtime

    monkeypatch.setattr(gc, "freeze", lambda: None)  # the callback's other step, not for this test's process
    ensure_manifest()
    with DAG("lineage_probe", schedule=None, start_date=datetime(2025, 1, 2)) as dag:
        DbtTaskGroup(group_id="dbt_market", **cosmos_task_group_kwargs())
    build, other = (dag.get_task(f"dbt_market.{m}_model_build")
                    for m in ("fct_daily_indicators", "stg_ibkr__daily_bars"))
    assert importlib.util.find_spec("airflow.providers.openlineage") is None  # not installed here
    dbt_project._before_dbt_task({"task": build})
    assert build.calculate_openlineage_events_completes({}, "/nowhere", ["dbt", "build"]) is False
    assert "calculate_openlineage_events_completes" not in vars(other)  # only the task about to run
    assert requires.setup_manifest is dbt_runtime._setup_manifest  # the group's later tasks reuse its parse

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name ==
                        "airflow.providers.openlineage" else real_find_spec(name, *a))
    dbt_project._before_dbt_task({"task": other})
    assert "calculate_openlineage_events_completes" not in vars(other)  # with the provider: Cosmos's own step
