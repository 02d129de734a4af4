"""The signal model in MLflow: log + register a trained model, compare it with the champion, move the alias,
and load the champion for serving (cached per process and model version).
Registry name, alias and store requirements: docs/ml-signal-model.md ("Modules").
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from include.ml.features import FEATURE_NAMES
from include.ml.train import PROMOTION_METRICS, TrainResult, evaluate, is_better, prob_up
from include.settings import Settings
from include.tracking import RunLogger, client, resolve_tracking_uri

if TYPE_CHECKING:
    import pandas as pd

    from include.ml.features import Dataset

DEFAULT_MODEL_NAME = "ibkr_signal_direction"
CHAMPION_ALIAS = "champion"
EXPERIMENT = "ibkr-signal-model"
ARTIFACT = "model"


class ModelNotFoundError(LookupError):
    """No registered model version carries the requested alias (train one with ``train_signal_model``)."""


def model_name() -> str:
    return Settings.from_env().ml_model_name or DEFAULT_MODEL_NAME


def experiment_name() -> str:
    return Settings.from_env().ml_experiment or EXPERIMENT


def alias_uri(name: str, alias: str = CHAMPION_ALIAS) -> str:
    return f"models:/{name}@{alias}"


def _use_store(tracking_uri: str | None) -> str:
    """Point MLflow's fluent API (model logging/loading) at the project's store; returns the URI."""
    import mlflow

    uri = resolve_tracking_uri(tracking_uri)
    client(uri)  # creates a fresh sqlite store under the project's lock and artifact root
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def log_and_register(
    result: TrainResult, mlflow_run_id: str, *, name: str | None = None, tracking_uri: str | None = None
) -> str:
    """Log params, hold-out/train metrics, the model (signature + input example) to the run, and register it
    as a new version of ``name``; returns the version (no alias yet: see ``promote_if_better``)."""
    import mlflow
    import mlflow.sklearn
    import sklearn
    from mlflow.models import infer_signature

    name = name or model_name()
    uri = _use_store(tracking_uri)
    logger = RunLogger(mlflow_run_id, tracking_uri=uri)
    logger.log_batch(
        params={**result.params.model_dump(mode="json"), **result.summary(), "registered_model": name},
        metrics={
            **{f"holdout_{k}": v for k, v in result.metrics.items()},
            **{f"train_{k}": v for k, v in result.train_metrics.items()},
        },
        on_param_change="tag",
    )
    example = result.train.X.head(5)
    signature = infer_signature(example, result.model.predict_proba(example))
    # skops (MLflow's sklearn serializer) walks every loaded module's attributes, which trips Airflow's
    # deprecated-import shims: ~1,000 FutureWarning lines per task log, none about this code.
    with mlflow.start_run(run_id=mlflow_run_id), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="skops")
        info = mlflow.sklearn.log_model(
            result.model, name=ARTIFACT, signature=signature, input_example=example,
            registered_model_name=name, pyfunc_predict_fn="predict_proba",
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],  # no slow requirement inference
        )  # fmt: skip
    version = str(info.registered_model_version)
    mlflow_client = client(uri)
    for key, value in {"holdout_" + k: v for k, v in result.metrics.items()}.items():
        mlflow_client.set_model_version_tag(name, version, key, f"{value:.6f}")
    mlflow_client.set_model_version_tag(name, version, "cutoff_date", result.cutoff.isoformat())
    mlflow_client.set_model_version_tag(name, version, "model_type", result.params.model_type)
    return version


@dataclass(frozen=True)
class LoadedModel:
    """A registered model version ready to score feature frames."""

    name: str
    version: str
    run_id: str | None
    model: Any
    inputs: tuple[str, ...]  # the signature's input columns

    def prob_up(self, X: pd.DataFrame) -> Any:
        missing = [c for c in self.inputs if c not in X.columns]
        if missing:
            raise ValueError(
                f"model {self.name} v{self.version} needs feature(s) {missing} that "
                f"include.ml.features does not build: retrain it"
            )
        return prob_up(self.model, X[list(self.inputs)])

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


_cache: dict[tuple[str, str, str], LoadedModel] = {}
_lock = threading.Lock()


def champion_version(name: str | None = None, alias: str = CHAMPION_ALIAS, *, tracking_uri: str | None = None) -> Any:
    """The model version behind ``alias``; raises ``ModelNotFoundError`` when there is none."""
    from mlflow.exceptions import MlflowException

    name = name or model_name()
    try:
        return client(tracking_uri).get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        raise ModelNotFoundError(
            f"no model version {alias_uri(name, alias)} in the MLflow registry "
            f"({exc.error_code}): run the train_signal_model DAG first"
        ) from None


def load_version(name: str, version: str, *, tracking_uri: str | None = None) -> LoadedModel:
    """Load one registered version (cached per process: a version's artifacts never change)."""
    uri = resolve_tracking_uri(tracking_uri)
    key = (uri, name, str(version))
    with _lock:
        if key not in _cache:
            import mlflow.sklearn
            from mlflow.models import get_model_info

            _use_store(uri)
            model_uri = f"models:/{name}/{version}"
            signature = get_model_info(model_uri).signature
            inputs = tuple(signature.inputs.input_names()) if signature is not None else FEATURE_NAMES
            mv = client(uri).get_model_version(name, str(version))
            _cache[key] = LoadedModel(name, str(version), mv.run_id, mlflow.sklearn.load_model(model_uri), inputs)
        return _cache[key]


def load_champion(
    name: str | None = None, alias: str = CHAMPION_ALIAS, *, tracking_uri: str | None = None
) -> LoadedModel:
    """The model ``models:/<name>@<alias>`` resolves to now. The alias is looked up on every call (cheap) so a
    promotion is picked up; the model itself is loaded once per process and version."""
    name = name or model_name()
    mv = champion_version(name, alias, tracking_uri=tracking_uri)
    return load_version(name, mv.version, tracking_uri=tracking_uri)


def promote_if_better(
    name: str,
    version: str,
    holdout: Dataset,
    mlflow_run_id: str,
    *,
    metric: str = "roc_auc",
    min_improvement: float = 0.0,
    tracking_uri: str | None = None,
) -> dict[str, Any]:
    """Score the candidate and the current champion on the SAME hold-out rows; move ``champion`` to the
    candidate only when it is strictly better on ``metric`` (by more than ``min_improvement``). The first model
    becomes champion. The comparison goes to the run (metrics ``champion_holdout_*``, tags) and to the version
    (tags); a candidate that loses stays registered without the alias."""
    if metric not in PROMOTION_METRICS:
        raise ValueError(f"unknown promotion metric {metric!r}; one of {sorted(PROMOTION_METRICS)}")
    uri = resolve_tracking_uri(tracking_uri)
    mlflow_client = client(uri)
    candidate = load_version(name, version, tracking_uri=uri)
    cand_metrics = evaluate(_Scorer(candidate), holdout)
    try:
        current = champion_version(name, tracking_uri=uri)
    except ModelNotFoundError:
        current = None
    champ_metrics: dict[str, float] = {}
    if current is None:
        promote, reason = True, "first registered model"
    elif str(current.version) == str(version):
        promote, reason = False, "already champion"
    else:
        champion = load_version(name, current.version, tracking_uri=uri)
        try:
            champ_metrics = evaluate(_Scorer(champion), holdout)
        except ValueError as exc:  # its features are gone: the serving code could not feed it any more
            promote, reason = True, f"champion v{current.version} cannot score the current features ({exc})"
        else:
            promote = is_better(cand_metrics[metric], champ_metrics[metric], metric, min_improvement)
            word = "beats" if promote else "does not beat"
            reason = (
                f"{metric} {cand_metrics[metric]:.6f} {word} champion v{current.version} "
                f"{champ_metrics[metric]:.6f} (min improvement {min_improvement})"
            )
    if promote:
        mlflow_client.set_registered_model_alias(name, CHAMPION_ALIAS, str(version))
    outcome = {
        "promoted": promote, "reason": reason, "version": str(version), "metric": metric,
        "previous_champion": None if current is None else str(current.version),
        "champion": str(version) if promote else str(current.version),  # type: ignore[union-attr]
        "candidate_metrics": cand_metrics, "champion_metrics": champ_metrics,
    }  # fmt: skip
    RunLogger(mlflow_run_id, tracking_uri=uri).log_batch(
        metrics={"promoted": promote, **{f"candidate_holdout_{k}": v for k, v in cand_metrics.items()},
                 **{f"champion_holdout_{k}": v for k, v in champ_metrics.items()}},
        tags={"promoted": str(promote).lower(), "promotion_reason": reason, "model_version": str(version),
              "previous_champion_version": outcome["previous_champion"] or "none"},
    )  # fmt: skip
    for key, value in {
        "promoted": str(promote).lower(),
        "promotion_reason": reason,
        "compared_with": outcome["previous_champion"] or "none",
    }.items():
        mlflow_client.set_model_version_tag(name, str(version), key, value)
    return outcome


class _Scorer:
    """Adapts a ``LoadedModel`` to ``evaluate`` (which calls ``prob_up(model, X)``)."""

    def __init__(self, loaded: LoadedModel) -> None:
        self._loaded = loaded
        self.classes_ = [0, 1]

    def predict_proba(self, X: pd.DataFrame) -> Any:
        import numpy as np

        up = self._loaded.prob_up(X)
        return np.column_stack([1 - up, up])
