"""Evaluation: the LLM strategy replayed over mart sessions with the stub answering, scored against what followed
(hit rate, return after N sessions, calibration) by mlflow.genai.evaluate; two prompt versions side by side."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from include.config import get_strategy
from include.llm import prompts
from include.llm.client import ChatClient
from include.llm.evaluation import Decision, calibration, evaluate_prompt, summarize
from include.llm.prompt_registry import sync_file
from include.llm.prompts import PROMPTS_DIR, load_prompt
from tests.llm.conftest import API_KEY


def _d(action: str, confidence: float, forward: float) -> Decision:
    return Decision("X", date(2025, 1, 2), action, confidence, "r", None, forward)


def test_summary_scores_direction_return_and_calibration():
    decisions = [_d("BUY", 0.9, 0.02), _d("BUY", 0.9, -0.01), _d("SELL", 0.7, -0.03), _d("HOLD", 0.6, 0.05)]
    s = summarize(decisions)
    assert (s["decisions"], s["calls"], s["actions.HOLD"]) == (4, 3, 1)
    assert s["hit_rate"] == pytest.approx(2 / 3)
    assert s["mean_signed_return"] == pytest.approx((0.02 - 0.01 + 0.03 + 0) / 4)
    assert s["brier"] == pytest.approx((0.01 + 0.81 + 0.09) / 3)
    assert calibration(decisions) == [
        {"bin": "0.6-0.8", "decisions": 1, "mean_confidence": 0.7, "hit_rate": 1.0},
        {"bin": "0.8-1.0", "decisions": 2, "mean_confidence": 0.9, "hit_rate": 0.5}]
    assert s["calibration_error"] == pytest.approx((1 * 0.3 + 2 * 0.4) / 3)


@pytest.fixture
def mart(clean_db, tmp_path):
    from include.backtest.engine import load_history
    from include.marketdata import db
    from sim.synthetic import build_mart, load_simulator_bars

    load_simulator_bars(clean_db, ["AAA", "BBB"], 260)
    build_mart(clean_db, tmp_path / "dbt")
    with db.connection(clean_db) as conn:
        return load_history(conn, ["AAA", "BBB"])


def test_two_prompt_versions_evaluated_side_by_side(stub, mart, session_mlflow_uri, tmp_path, monkeypatch):
    from include.tracking import client

    monkeypatch.setenv("MLFLOW_TRACKING_URI", session_mlflow_uri)
    base = get_strategy(4)  # before the prompt folder is swapped (the config validates its prompt id)
    name = f"eval_{uuid.uuid4().hex[:8]}"
    text = (PROMPTS_DIR / "signal_v1.md").read_text().replace("id: signal_v1", f"id: {name}")
    monkeypatch.setattr(prompts, "PROMPTS_DIR", tmp_path)
    path = tmp_path / f"{name}.md"
    path.write_text(text)
    registry = client()
    assert int(sync_file(registry, load_prompt(name)).version) == 1
    path.write_text(text.replace("You are a cautious", "You are a patient, cautious"))
    assert int(sync_file(registry, load_prompt(name)).version) == 2

    config = base.model_copy(update={"signal": base.signal.model_copy(update={"prompt": name})})
    runs = {}
    with ChatClient(stub.base_url, "stub-model", API_KEY) as chat:
        for version in (1, 2):
            runs[version] = evaluate_prompt(config, chat, mart, prompt_version=version, horizon=5, sessions=8)
    assert len(stub.requests()) == 2 * 2 * 8  # every replayed session asked the model once per version

    experiment = registry.get_experiment_by_name(f"ibkr-llm-eval-{config.name}")
    for version, out in runs.items():
        run = registry.get_run(out["run_id"])
        assert run.info.experiment_id == experiment.experiment_id and run.info.status == "FINISHED"
        assert run.data.params["prompt_version"] == str(version)
        assert run.data.tags["llm.prompt_uri"] == f"prompts:/{name}/{version}"
        assert {"hit_rate", "mean_signed_return", "brier", "calibration_error", "decisions",
                "return_after_n/mean"} <= set(run.data.metrics)
        assert run.data.metrics["decisions"] == 16
        traces = registry.search_traces(locations=[experiment.experiment_id], run_id=out["run_id"])
        assert len(traces) == 16
        scored = traces[0].info.assessments or registry.get_trace(traces[0].info.trace_id).info.assessments
        assert "return_after_n" in {a.name for a in scored}
        assert {a.path for a in registry.list_artifacts(out["run_id"], "evaluation")} == {
            "evaluation/decisions.csv", "evaluation/calibration.json"}
    # the stub reads only the features: the same decisions, so the same scores, whichever wording
    assert runs[1]["metrics"]["hit_rate"] == runs[2]["metrics"]["hit_rate"]
