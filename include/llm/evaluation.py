"""Offline evaluation of the LLM strategy: replay it over past sessions of the mart, score each decision against
what followed, one MLflow run per prompt version (scorers, experiment: docs/llm-tracing.md). Usage:
``python -m include.llm.evaluation --strategy-id 4 [--prompt-version 2] --sessions 20 --horizon 5``
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from include.backtest.engine import History
    from include.config.models import StrategyConfig
    from include.llm.client import ChatClient
    from include.strategies.llm_signal import LLMStrategy

log = logging.getLogger(__name__)
EVAL_EXPERIMENT = "ibkr-llm-eval-{name}"
SIGN = {"BUY": 1.0, "SELL": -1.0, "HOLD": 0.0}


@dataclass(frozen=True)
class Decision:
    symbol: str
    session_date: date
    action: str
    confidence: float
    rationale: str
    trace_id: str | None
    forward_return: float  # close after ``horizon`` sessions / close at the decision - 1

    @property
    def hit(self) -> bool | None:
        """BUY right if the price rose, SELL right if it fell; None for HOLD (not a directional call)."""
        return None if self.action == "HOLD" else (self.forward_return > 0) == (self.action == "BUY")


def replay(strategy: LLMStrategy, history: History, *, horizon: int = 5, sessions: int = 20) -> list[Decision]:
    """The strategy's decision at each of the last ``sessions`` sessions per symbol that have ``horizon`` sessions
    after them, seeing that session's row and the one before (as the live DAG does); nothing later."""
    out = []
    for symbol, sh in history.symbols.items():
        rows = sh.rows
        for j in range(max(1, len(rows) - horizon - sessions), len(rows) - horizon):
            signal = strategy.generate(symbol, rows[j], rows[j - 1])
            later, now = rows[j + horizon]["close"], rows[j]["close"]
            out.append(Decision(symbol, rows[j]["session_date"], signal.action, signal.confidence, signal.rationale,
                                signal.trace_id, later / now - 1))
    return out


def calibration(decisions: Sequence[Decision], bins: int = 5) -> list[dict[str, Any]]:
    """Directional decisions grouped by confidence: the mean stated confidence vs the observed hit rate."""
    table = []
    calls = [d for d in decisions if d.hit is not None]
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        group = [d for d in calls if low <= d.confidence < high or (b == bins - 1 and d.confidence == 1.0)]
        if group:
            table.append({"bin": f"{low:.1f}-{high:.1f}", "decisions": len(group),
                          "mean_confidence": sum(d.confidence for d in group) / len(group),
                          "hit_rate": sum(bool(d.hit) for d in group) / len(group)})
    return table


def summarize(decisions: Sequence[Decision], bins: int = 5) -> dict[str, float]:
    """Hit rate and Brier score over directional calls, mean signed return after N sessions over all decisions,
    expected calibration error (|confidence - hit rate| weighted by bin size)."""
    calls = [d for d in decisions if d.hit is not None]
    n = len(calls)
    table = calibration(decisions, bins)
    return {
        "decisions": float(len(decisions)), "calls": float(n),
        **{f"actions.{a}": float(sum(d.action == a for d in decisions)) for a in SIGN},
        "hit_rate": sum(bool(d.hit) for d in calls) / n if n else 0.0,
        "mean_signed_return": (sum(SIGN[d.action] * d.forward_return for d in decisions) / len(decisions)
                               if decisions else 0.0),
        "brier": sum((d.confidence - float(bool(d.hit))) ** 2 for d in calls) / n if n else 0.0,
        "calibration_error": sum(r["decisions"] * abs(r["mean_confidence"] - r["hit_rate"]) for r in table) / n
        if n else 0.0,
    }  # fmt: skip


def scorers() -> list[Any]:
    """Per-decision scores shown on each trace; the run gets their means (``<name>/mean``)."""
    from mlflow.genai.scorers import scorer

    @scorer
    def direction_hit(outputs: dict[str, Any], expectations: dict[str, Any]) -> float | None:
        action = outputs.get("action")
        if action not in ("BUY", "SELL"):
            return None
        return float((expectations["forward_return"] > 0) == (action == "BUY"))

    @scorer
    def return_after_n(outputs: dict[str, Any], expectations: dict[str, Any]) -> float:
        return SIGN.get(outputs.get("action"), 0.0) * expectations["forward_return"]

    @scorer
    def brier(outputs: dict[str, Any], expectations: dict[str, Any]) -> float | None:
        action = outputs.get("action")
        if action not in ("BUY", "SELL"):
            return None
        hit = float((expectations["forward_return"] > 0) == (action == "BUY"))
        return (float(outputs.get("confidence", 0.0)) - hit) ** 2

    return [direction_hit, return_after_n, brier]


def evaluate_prompt(config: StrategyConfig, chat: ChatClient, history: History, *, prompt_version: int | None = None,
                    horizon: int = 5, sessions: int = 20, tracking_uri: str | None = None,
                    tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Replay ``config``'s LLM strategy with one prompt version (default: the one its alias serves) and score it in a
    new evaluation run (with ``tags`` besides its own, e.g. the Airflow run's); returns the run id, the prompt URI
    and the metrics."""
    import mlflow

    from include.backtest.tasks import _csv
    from include.llm.prompt_registry import resolve, resolve_version
    from include.llm.tracing import LLMTracking, flush_traces
    from include.strategies.llm_signal import LLMStrategy
    from include.tracking import RunLogger, client, ensure_experiment, resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    registry = client(uri)
    params = config.signal
    prompt = (resolve_version(params.prompt, prompt_version, registry) if prompt_version is not None
              else resolve(params.prompt, params.prompt_alias, registry))
    experiment_id = ensure_experiment(EVAL_EXPERIMENT.format(name=config.name), tracking_uri=uri)
    run_id = registry.create_run(experiment_id, run_name=f"eval__{prompt.label}", tags={
        **(tags or {}), "llm.evaluation": "true", "strategy": config.name, "llm.prompt_uri": prompt.uri}).info.run_id
    tracking = LLMTracking(uri, experiment_id, run_id, extra_tags={"llm.evaluation": "true"})
    strategy = LLMStrategy(config.id, params, chat, tracking=tracking, prompt=prompt)
    try:
        decisions = replay(strategy, history, horizon=horizon, sessions=sessions)
    finally:
        flush_traces()  # the caller owns ``chat``: do not close it
    summary = summarize(decisions)
    logger = RunLogger(run_id, tracking_uri=uri)
    logger.log_batch(params={"prompt_name": prompt.name, "prompt_version": prompt.version, "horizon": horizon,
                             "sessions": sessions, "symbols": ",".join(history.symbols), "model": chat.model,
                             "first_session": min(d.session_date for d in decisions) if decisions else None,
                             "last_session": max(d.session_date for d in decisions) if decisions else None},
                     metrics=summary)  # fmt: skip
    rows = [{**asdict(d), "hit": d.hit} for d in decisions]
    logger.log_text(_csv(rows, [*Decision.__dataclass_fields__, "hit"]), "evaluation/decisions.csv")
    logger.log_dict(calibration(decisions), "evaluation/calibration.json")
    traced = [d for d in decisions if d.trace_id]
    metrics = dict(summary)
    if traced:
        if uri.lower().startswith("sqlite:"):  # one writer at a time: parallel scorer workers only wait on locks
            os.environ.setdefault("MLFLOW_GENAI_EVAL_MAX_WORKERS", "1")
        if mlflow.get_tracking_uri() != uri:
            mlflow.set_tracking_uri(uri)
        data = [{"trace": registry.get_trace(d.trace_id), "expectations": {"forward_return": d.forward_return}}
                for d in traced]
        with mlflow.start_run(run_id=run_id):
            result = mlflow.genai.evaluate(data=data, scorers=scorers())
        metrics.update({k: float(v) for k, v in result.metrics.items()})
    else:
        registry.set_terminated(run_id)
    log.info("evaluated %s over %d decisions: %s", prompt.uri, len(decisions), metrics)
    return {"run_id": run_id, "prompt_uri": prompt.uri, "metrics": metrics, "decisions": len(decisions)}


def run_evaluation(strategy_id: int, *, prompt_version: int | None = None, symbols: Sequence[str] | None = None,
                   sessions: int = 20, horizon: int = 5, tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Evaluate a configured LLM strategy on the mart (MARKET_DB_URL, MLFLOW_TRACKING_URI, its llm connection):
    what ``python -m include.llm.evaluation`` and the ``evaluate_llm_strategy`` DAG run (which tags the run with its
    ``dag_id`` and ``run_id``)."""
    from include.backtest.engine import load_history
    from include.config import get_strategy
    from include.llm.connection import load_endpoint
    from include.marketdata.db import connection
    from include.settings import load_settings

    config = get_strategy(strategy_id)
    if config.signal.model != "llm":
        raise ValueError(f"strategy {strategy_id} ({config.name}) is a {config.signal.model} strategy, not llm")
    with connection(load_settings().require_market_db_url()) as conn:
        history = load_history(conn, list(symbols or config.symbols))
    endpoint = load_endpoint(config.signal.connection_id)
    return evaluate_prompt(config, endpoint.client(), history, prompt_version=prompt_version, horizon=horizon,
                           sessions=sessions, tags=tags)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strategy-id", type=int, default=4)
    parser.add_argument("--prompt-version", type=int)
    parser.add_argument("--symbols", nargs="*")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--horizon", type=int, default=5)
    args = parser.parse_args(argv)
    print(run_evaluation(args.strategy_id, prompt_version=args.prompt_version, symbols=args.symbols,
                         sessions=args.sessions, horizon=args.horizon))


if __name__ == "__main__":
    main()
