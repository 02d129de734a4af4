"""Every LLM decision is an MLflow trace (local sqlite store, the stub answering over HTTP): one per symbol, in the
strategy run of its DAG run, with the rendered prompt, raw answer, decision or HOLD reason, latency and tokens; the
trace id rides on the signal into the order plan's signal JSON; the run names the prompt version that decided."""

from __future__ import annotations

import json
import uuid
from datetime import date
from types import SimpleNamespace

import psycopg2
import pytest

from include.config import get_strategy
from include.execution.models import OrderPlan
from include.llm.connection import LLMEndpoint
from include.llm.tracing import LLMTracking
from include.strategies.registry import build_strategy, generate_signals
from tests.llm.conftest import API_KEY

DAY = date(2025, 3, 4)
ROW = {"session_date": DAY, "close": 250.0, "sma_20": 245.0, "sma_50": 240.0, "macd_hist": 0.3, "atr_14": 5.0}
LATEST = {"TSLA": {**ROW, "symbol": "TSLA", "rsi_14": 22.5}, "NVDA": {**ROW, "symbol": "NVDA", "rsi_14": 50.0}}


@pytest.fixture
def strategy_run(session_mlflow_uri, monkeypatch):
    """A trading DAG run's MLflow run, and the AIRFLOW_CTX_* variables Airflow sets in its task process."""
    from include.tracking import start_run

    monkeypatch.setenv("MLFLOW_TRACKING_URI", session_mlflow_uri)
    dag_run_id = f"manual__{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "ibkr_trading_strategy")
    monkeypatch.setenv("AIRFLOW_CTX_DAG_RUN_ID", dag_run_id)
    run = start_run(f"ibkr-strategy-{get_strategy(4).name}", dag_id="ibkr_trading_strategy", run_id=dag_run_id)
    return SimpleNamespace(mlflow_run_id=run, dag_run_id=dag_run_id)


def _signals(stub, symbols=("TSLA", "NVDA", "AMD")):
    strategy = build_strategy(get_strategy(4), llm_endpoint=LLMEndpoint(stub.base_url, "stub-model", API_KEY))
    try:
        return generate_signals(strategy, list(symbols), LATEST)
    finally:
        strategy.close()


def test_one_trace_per_symbol_in_the_strategy_run(stub, strategy_run, clean_db):
    from include.tracking import client

    signals = _signals(stub)
    assert [(s.symbol, s.action) for s in signals] == [("TSLA", "BUY"), ("NVDA", "HOLD"), ("AMD", "HOLD")]
    assert all(s.trace_id and s.trace["trace_id"] == s.trace_id for s in signals)
    assert len({s.trace_id for s in signals}) == 3

    mlflow = client()
    run = mlflow.get_run(strategy_run.mlflow_run_id)
    version = int(run.data.tags["llm.prompt_version"])
    assert run.data.tags["llm.prompt_uri"] == f"prompts:/signal_v1/{version}"
    assert run.data.tags["llm.prompt_alias"] == "production"
    assert json.loads(run.data.tags["mlflow.linkedPrompts"]) == [{"name": "signal_v1", "version": str(version)}]
    assert signals[0].trace["prompt_version"] == f"signal_v1/{version}"

    traces = mlflow.search_traces(locations=[run.info.experiment_id], run_id=strategy_run.mlflow_run_id)
    assert sorted(t.info.trace_id for t in traces) == sorted(s.trace_id for s in signals)
    by_symbol = {t.info.tags["symbol"]: t for t in traces}
    for t in traces:
        assert t.info.tags["airflow.dag_run_id"] == strategy_run.dag_run_id
        assert t.info.tags["airflow.dag_id"] == "ibkr_trading_strategy"
        assert t.info.tags["prompt_version"] == f"signal_v1/{version}"
        assert API_KEY not in t.to_json()  # the rendered prompt and the request carry no secret

    buy = by_symbol["TSLA"]
    assert buy.info.tags["action"] == "BUY"
    root = next(s for s in buy.data.spans if s.parent_id is None)
    chat = next(s for s in buy.data.spans if s.name == "chat.completions")
    assert root.outputs["action"] == "BUY" and root.outputs["confidence"] == signals[0].confidence
    assert "Symbol: TSLA" in chat.inputs["messages"][1]["content"]
    assert '"BUY"' in chat.outputs["content"] and "choices" in chat.outputs["raw_response"]
    assert chat.attributes["latency_s"] > 0 and chat.attributes["attempts"] == 1
    assert buy.info.token_usage["total_tokens"] > 0
    hold = next(s for s in by_symbol["AMD"].data.spans if s.parent_id is None)
    assert hold.outputs["hold_reason"] == "HOLD: no feature row for this symbol"
    assert len(by_symbol["AMD"].data.spans) == 1  # no call was made

    # the order plan (what trading.order_intents stores as its signal JSON) carries the trace id
    decision = SimpleNamespace(approved=True, side="BUY", quantity=3, symbol="TSLA", strategy_id=4, status="approved",
                               limit_price=250.5, last_price=250.0, position_before=0.0, to_dict=dict)
    plan = OrderPlan.from_decision(decision, session_date=DAY, signal=signals[0])
    assert plan.signal["trace_id"] == signals[0].trace_id
    from include.execution import RunContext, execute_intents

    execute_intents([plan], RunContext("ibkr_trading_strategy", "manual__traced", "dry_run"), dsn=clean_db)
    with psycopg2.connect(clean_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT status, signal->>'trace_id' FROM trading.order_intents")
        assert cur.fetchall() == [("simulated", signals[0].trace_id)]  # the intent leads back to its LLM trace


def test_a_failed_call_is_a_traced_hold(stub, strategy_run):
    from include.tracking import client

    stub.fault("500", times=None)
    (signal,) = _signals(stub, ["TSLA"])
    assert signal.action == "HOLD" and "HTTP 500" in signal.rationale
    trace = client().get_trace(signal.trace_id)
    chat = next(s for s in trace.data.spans if s.name == "chat.completions")
    assert chat.status.status_code == "ERROR" and chat.attributes["error_type"] == "LLMHTTPError"
    root = next(s for s in trace.data.spans if s.parent_id is None)
    assert root.outputs["hold_reason"].startswith("HOLD: LLM call failed: HTTP 500")


def test_tracing_failures_never_change_the_decision(stub, session_mlflow_uri, monkeypatch, tmp_path):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", session_mlflow_uri)
    monkeypatch.chdir(tmp_path)
    uri_before = mlflow.get_tracking_uri()
    broken = LLMTracking("sqlite:///relative/mlflow.db", experiment_id="1")  # refused by the store resolver
    strategy = build_strategy(get_strategy(4), llm_endpoint=LLMEndpoint(stub.base_url, "stub-model", API_KEY))
    strategy = type(strategy)(**{**strategy.__dict__, "tracking": None, "_state": {"tracking": broken,
                                                                                   "prompt": None}})
    (signal,) = generate_signals(strategy, ["TSLA"], LATEST)
    strategy.close()
    assert signal.action == "BUY" and signal.trace_id is None
    # The refused URI did not become MLflow's global one (later fluent calls would write a store into the cwd).
    assert mlflow.get_tracking_uri() == uri_before and not (tmp_path / "relative").exists()


def test_without_an_mlflow_store_the_repo_prompt_decides_untraced(stub, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (signal,) = _signals(stub, ["TSLA"])
    assert signal.action == "BUY" and signal.trace_id is None
    assert signal.trace["prompt_version"].startswith("signal_v1@")
