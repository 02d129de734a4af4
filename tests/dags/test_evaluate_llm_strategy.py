"""``evaluate_llm_strategy`` under ``dag.test()``: the LLM strategy (the local stub answering) replayed over mart
sessions and scored in one MLflow evaluation run per prompt version."""

from __future__ import annotations

import json

import pytest

from tests.llm.conftest import llm_stub_server as llm_stub_server  # fixture
from tests.llm.conftest import stub as stub  # fixture
from tests.llm.test_evaluation import mart as mart  # fixture: AAA, BBB bars -> dbt mart

pytestmark = pytest.mark.airflow


def test_the_dag_scores_the_strategy_in_an_evaluation_run(run_dag, stack_env, stub, mart, monkeypatch):
    from include.tracking import client

    monkeypatch.setenv("AIRFLOW_CONN_LLM_DEFAULT", json.dumps(
        {"conn_type": "http", "host": stub.base_url, "extra": {"model": "stub-signal-1"}}))
    state, tasks = run_dag("evaluate_llm_strategy", {"strategy_id": 4, "prompt_versions": [], "symbols": ["AAA", "BBB"],
                                                     "sessions": 5, "horizon": 3})
    assert state == "success", tasks
    mlflow = client()
    experiment = mlflow.get_experiment_by_name("ibkr-llm-eval-llm_daily_signal")
    # The session's store may hold other evaluations of this strategy (tests/llm): this DAG run's is tagged with it.
    dag_run_id = run_dag.last_run_id
    (run,) = mlflow.search_runs([experiment.experiment_id], filter_string="tags.`llm.evaluation` = 'true' and "
                                f"tags.dag_id = 'evaluate_llm_strategy' and tags.run_id = '{dag_run_id}'")
    assert run.data.params["sessions"] == "5" and run.data.params["horizon"] == "3"
    assert run.data.params["symbols"] == "AAA,BBB" and run.data.metrics["decisions"] == 10
    m = run.data.metrics  # "calls": the decisions that were a BUY or SELL (hit rate and Brier score score those)
    assert m["calls"] + m.get("actions.HOLD", 0) == 10 and run.info.status == "FINISHED"
    traces = mlflow.search_traces(locations=[experiment.experiment_id], run_id=run.info.run_id)
    assert len(traces) == 10  # one traced decision per symbol and session, the evaluation's input
    assert run.data.tags["llm.prompt_uri"].startswith("prompts:/signal_v1/")
