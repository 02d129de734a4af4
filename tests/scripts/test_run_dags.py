"""make demo's progress lines (scripts/run_dags.py) and its VERBOSE switch (scripts/demo.py)."""

from __future__ import annotations

import io
from types import SimpleNamespace

from scripts.demo import verbose
from scripts.run_dags import TASK_COLUMN_MAX, TaskProgress, first_line, task_line


def test_task_line_has_dag_task_state_and_seconds():
    assert task_line("ibkr_ingest_daily_bars", "fetch_bars", "success", 3.21, 15) == (
        "  ibkr_ingest_daily_bars  fetch_bars       ok         3.2 s")
    assert task_line("m", "dbt_failed", "skipped", None, 10) == "  m  dbt_failed  skipped"
    assert "FAILED" in task_line("m", "t", "failed", 0.5, 5)
    long_id = "dbt_market.relationships_fct_daily_indicators_symbol__symbol__ref_stg_ibkr__daily_bars__test"
    line = task_line("market_data_models", long_id, "success", 4.5, TASK_COLUMN_MAX)
    assert len(line) < 100 and "…" in line


def test_first_line_of_an_error():
    assert first_line(RuntimeError("boom\nTraceback ...")) == "RuntimeError: boom"
    assert first_line("plain text\nmore") == "plain text"
    assert first_line(None) == "failed"


class FakeDag:
    dag_id = "demo_dag"
    task_ids = ["extract", "load", "never_ran"]


def _ti(task_id, map_index=-1, state=None, start=None):
    return SimpleNamespace(task_id=task_id, map_index=map_index, state=state, start_date=start)


def test_progress_prints_one_line_per_task_as_it_finishes_and_the_rest_after_the_run():
    out = io.StringIO()
    progress = TaskProgress(out)
    progress.begin(FakeDag())
    progress.on_task_instance_running(None, _ti("extract", 0))
    progress.on_task_instance_success(None, _ti("extract", 0))
    progress.on_task_instance_running(None, _ti("load"))
    progress.on_task_instance_failed(None, _ti("load"), ValueError("bad rows\ndetail"))
    run = SimpleNamespace(get_task_instances=lambda: [_ti("extract", 0, "success"), _ti("load", -1, "failed"),
                                                      _ti("never_ran", -1, "upstream_failed")])
    progress.end(run)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("  demo_dag  extract[0]") and lines[0].endswith(" s") and " ok " in lines[0]
    assert " FAILED " in lines[1] and lines[2].strip() == "ValueError: bad rows"
    assert lines[3].startswith("  demo_dag  never_ran") and "upstream failed" in lines[3]
    assert len(lines) == 4  # tasks reported live are not repeated
    assert progress.errors == ["demo_dag.load: ValueError: bad rows"]


def test_verbose_switch():
    assert verbose({"VERBOSE": "1"}) and verbose({"VERBOSE": "yes"})
    assert not verbose({}) and not verbose({"VERBOSE": "0"}) and not verbose({"VERBOSE": "false"})
