"""MLflow tracing of LLM decisions: one trace per symbol decision, linked to the DAG run's strategy run; tracing
never changes a decision. Spans and failure handling: docs/llm-tracing.md.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from include.llm.client import ChatResult
    from include.llm.prompt_registry import RegisteredPrompt

log = logging.getLogger(__name__)
DAG_ID_TAG, DAG_RUN_ID_TAG = "airflow.dag_id", "airflow.dag_run_id"


@dataclass(frozen=True)
class LLMTracking:
    """Where the LLM strategy records: the store, the experiment, the strategy run and the DAG run it belongs to."""

    tracking_uri: str
    experiment_id: str
    mlflow_run_id: str | None = None
    dag_id: str | None = None
    dag_run_id: str | None = None
    extra_tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def client(self) -> MlflowClient:
        from include.tracking import client

        return client(self.tracking_uri)

    @classmethod
    def for_strategy(cls, strategy_name: str, *, environ: Mapping[str, str] | None = None) -> LLMTracking | None:
        """The tracking of the running Airflow task (its ``AIRFLOW_CTX_*`` variables find the DAG run's strategy
        run by tags); None when no MLflow store is configured (then nothing is traced)."""
        from include.config import strategy_experiment
        from include.settings import SettingsError
        from include.tracking import ensure_experiment, resolve_tracking_uri
        from include.tracking.runs import find_run

        env = os.environ if environ is None else environ
        try:
            uri = resolve_tracking_uri(env.get("MLFLOW_TRACKING_URI") or None)
        except SettingsError:
            return None
        experiment_id = ensure_experiment(strategy_experiment(strategy_name), tracking_uri=uri)
        dag_id, dag_run_id = env.get("AIRFLOW_CTX_DAG_ID"), env.get("AIRFLOW_CTX_DAG_RUN_ID")
        run = find_run(experiment_id, dag_id, dag_run_id, tracking_uri=uri) if dag_id and dag_run_id else None
        return cls(uri, experiment_id, run, dag_id, dag_run_id)

    def record_prompt(self, prompt: RegisteredPrompt) -> None:
        """The strategy run says which prompt version decides (tags + MLflow's prompt-to-run link)."""
        if not self.mlflow_run_id:
            return
        from include.tracking import RunLogger

        try:
            self.client.link_prompt_version_to_run(self.mlflow_run_id, prompt.uri)
            RunLogger(self.mlflow_run_id, tracking_uri=self.tracking_uri).set_tags(
                {"llm.prompt_uri": prompt.uri, "llm.prompt_alias": prompt.alias, "llm.prompt_version": prompt.version,
                 "llm.prompt_file_version": prompt.file_version})  # fmt: skip
        except Exception as exc:  # never let the record stop a decision
            log.warning("could not record prompt %s on run %s: %s", prompt.uri, self.mlflow_run_id, exc)


def flush_traces() -> None:
    """Export the traces still queued (MLflow logs them asynchronously)."""
    try:
        import mlflow

        mlflow.flush_trace_async_logging()
    except Exception as exc:
        log.warning("pending LLM traces not flushed: %s", exc)


def _usage(usage: Mapping[str, Any] | None) -> dict[str, int] | None:
    """OpenAI ``usage`` -> MLflow's token usage attribute."""
    if not usage:
        return None
    names = {"input_tokens": "prompt_tokens", "output_tokens": "completion_tokens", "total_tokens": "total_tokens"}
    out = {k: int(usage[v]) for k, v in names.items() if isinstance(usage.get(v), int | float)}
    return out or None


class DecisionTrace:
    """``with DecisionTrace(tracking, symbol, tags) as t: ... t.chat(...); t.finish(signal)`` -> ``t.trace_id``.
    With ``tracking=None`` every method is a no-op and ``trace_id`` stays None."""

    def __init__(self, tracking: LLMTracking | None, symbol: str, inputs: Mapping[str, Any],
                 tags: Mapping[str, Any], prompt: RegisteredPrompt | None = None) -> None:
        self.tracking, self.symbol, self.prompt = tracking, symbol, prompt
        self.inputs, self.tags = dict(inputs), {k: str(v) for k, v in tags.items() if v is not None}
        self.trace_id: str | None = None
        self._root: Any = None
        self._client: MlflowClient | None = None

    def __enter__(self) -> DecisionTrace:
        if self.tracking is None:
            return self
        try:
            import mlflow

            self._client = self.tracking.client  # validates the URI first: a refused one must not become global
            if mlflow.get_tracking_uri() != self.tracking.tracking_uri:
                mlflow.set_tracking_uri(self.tracking.tracking_uri)  # the tracer exports to the global URI
            tags = {**self.tags, **self.tracking.extra_tags, DAG_ID_TAG: self.tracking.dag_id,
                    DAG_RUN_ID_TAG: self.tracking.dag_run_id}
            self._root = self._client.start_trace(
                f"llm_signal {self.symbol}", span_type="CHAIN", inputs=self.inputs,
                tags={k: str(v) for k, v in tags.items() if v is not None},
                experiment_id=self.tracking.experiment_id, run_id=self.tracking.mlflow_run_id,
            )
            self.trace_id = self._root.trace_id
        except Exception as exc:
            log.warning("LLM trace for %s not started: %s", self.symbol, exc)
            self._root = None
        return self

    def chat(self, messages: list[dict[str, Any]], request: Mapping[str, Any], result: ChatResult | None = None,
             error: Exception | None = None) -> None:
        """The chat call as a ``CHAT_MODEL`` span: rendered messages in, raw answer out, latency, attempts, tokens."""
        if self._root is None or self._client is None:
            return
        try:
            span = self._client.start_span("chat.completions", trace_id=self.trace_id, parent_id=self._root.span_id,
                                           span_type="CHAT_MODEL", inputs={"messages": messages, **request})
            attributes: dict[str, Any] = {}
            if result is not None:
                attributes = {"model": result.model, "latency_s": result.latency_s, "attempts": result.attempts,
                              "finish_reason": result.finish_reason}
                usage = _usage(result.usage)
                if usage:
                    attributes["mlflow.chat.tokenUsage"] = usage
                outputs: Any = {"content": result.content, "raw_response": result.raw}
            else:
                attributes = {"error_type": type(error).__name__, "attempts": getattr(error, "attempts", None),
                              "latency_s": getattr(error, "latency_s", None),
                              "status_code": getattr(error, "status_code", None)}
                outputs = {"error": str(error), "raw_response": getattr(error, "raw", None)}
            span.set_attributes({k: v for k, v in attributes.items() if v is not None})
            self._client.end_span(self.trace_id, span.span_id, outputs=outputs,
                                  status="OK" if error is None else "ERROR")
        except Exception as exc:
            log.warning("LLM chat span for %s not recorded: %s", self.symbol, exc)

    def finish(self, decision: Mapping[str, Any]) -> None:
        """Close the trace with the decision: action, confidence and rationale (the HOLD reason for a HOLD)."""
        if self._root is None or self._client is None:
            return
        try:
            if self.prompt is not None:
                from mlflow.entities.model_registry import PromptVersion

                pv = PromptVersion(self.prompt.name, self.prompt.version, template=[
                    {"role": "system", "content": self.prompt.system}, {"role": "user", "content": self.prompt.user}])
                self._client.link_prompt_versions_to_trace([pv], self.trace_id)
            self._client.set_trace_tag(self.trace_id, "action", str(decision.get("action")))
            self._client.end_trace(self.trace_id, outputs=dict(decision))
        except Exception as exc:
            log.warning("LLM trace for %s not finished: %s", self.symbol, exc)
            self.trace_id = None
        self._root = None

    def __exit__(self, *exc: object) -> None:
        if self._root is not None:  # an exception escaped before finish(): close the trace as an error
            try:
                self._client.end_trace(self.trace_id, status="ERROR")  # type: ignore[union-attr]
            except Exception as err:
                log.warning("LLM trace for %s not closed: %s", self.symbol, err)
            self.trace_id = None
