"""Train and evaluate the next-session direction classifier on a time-ordered split (no MLflow here)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from include.ml.features import FEATURE_NAMES, Dataset, default_cutoff, make_dataset, time_split

if TYPE_CHECKING:
    import pandas as pd

ModelType = Literal["logistic_regression", "gradient_boosting", "random_forest", "dummy"]
# Metric deciding promotion, and whether higher is better.
PROMOTION_METRICS = {"roc_auc": True, "log_loss": False, "accuracy": True}


class TrainParams(BaseModel):
    """What a training run may vary (the DAG's params). ``dummy`` predicts the training base rate: a
    deliberately uninformed baseline (ROC AUC 0.5)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_type: ModelType = "logistic_regression"
    C: float = Field(1.0, gt=0)  # logistic regression: inverse L2 strength
    n_estimators: int = Field(200, ge=1, le=5000)
    max_depth: int = Field(3, ge=1, le=32)
    learning_rate: float = Field(0.05, gt=0, le=1)
    holdout_fraction: float = Field(0.2, gt=0, lt=1)
    cutoff_date: date | None = None  # first hold-out session; default: from holdout_fraction
    random_state: int = 0
    promotion_metric: Literal["roc_auc", "log_loss", "accuracy"] = "roc_auc"
    min_improvement: float = Field(0.0, ge=0)  # the candidate must beat the champion by more than this
    min_train_rows: int = Field(100, ge=10)
    min_holdout_rows: int = Field(20, ge=5)


def build_estimator(params: TrainParams) -> Any:
    """A scikit-learn pipeline (imputation is not needed: NaN rows never reach it)."""
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if params.model_type == "logistic_regression":
        return make_pipeline(StandardScaler(), LogisticRegression(C=params.C, max_iter=1000))
    if params.model_type == "gradient_boosting":
        return GradientBoostingClassifier(
            n_estimators=params.n_estimators,
            max_depth=params.max_depth,
            learning_rate=params.learning_rate,
            random_state=params.random_state,
        )
    if params.model_type == "random_forest":
        return RandomForestClassifier(
            n_estimators=params.n_estimators, max_depth=params.max_depth, random_state=params.random_state, n_jobs=1
        )
    return DummyClassifier(strategy="prior")


def prob_up(model: Any, X: pd.DataFrame) -> Any:
    """P(next close higher) per row of ``X`` (columns in the model's order): predict_proba's class-1 column."""
    import numpy as np

    proba = model.predict_proba(X)
    classes = list(model.classes_)
    return proba[:, classes.index(1)] if 1 in classes else np.zeros(len(X))


def evaluate(model: Any, data: Dataset) -> dict[str, float]:
    """Hold-out metrics: accuracy, log loss, ROC AUC (NaN when the hold-out has one class), precision of the
    up class, the base rate (share of up sessions) and the row count."""
    import numpy as np
    from sklearn.metrics import accuracy_score, log_loss, precision_score, roc_auc_score

    y = data.y.to_numpy()
    p_up = np.clip(prob_up(model, data.X), 1e-15, 1 - 1e-15)
    predicted = (p_up >= 0.5).astype(int)
    both = len(set(y.tolist())) == 2
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "log_loss": float(log_loss(y, p_up, labels=[0, 1])),
        "roc_auc": float(roc_auc_score(y, p_up)) if both else math.nan,
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "base_rate": float(y.mean()),
        "rows": float(len(y)),
    }


def is_better(candidate: float, champion: float, metric: str, min_improvement: float = 0.0) -> bool:
    """Strictly better by more than ``min_improvement`` (NaN never wins; a tie keeps the champion)."""
    if math.isnan(candidate):
        return False
    if math.isnan(champion):
        return True
    if PROMOTION_METRICS[metric]:
        return candidate > champion + min_improvement
    return candidate < champion - min_improvement


@dataclass(frozen=True)
class TrainResult:
    model: Any
    params: TrainParams
    cutoff: date
    train: Dataset
    holdout: Dataset
    metrics: dict[str, float]  # hold-out metrics
    train_metrics: dict[str, float]

    def summary(self) -> dict[str, Any]:
        """Split facts for MLflow params: cutoff, date ranges, rows and symbols."""
        return {
            "cutoff_date": self.cutoff.isoformat(),
            "train_start": min(self.train.meta["session_date"]).isoformat(),
            "train_end": max(self.train.meta["session_date"]).isoformat(),
            "holdout_start": min(self.holdout.meta["session_date"]).isoformat(),
            "holdout_end": max(self.holdout.meta["session_date"]).isoformat(),
            "train_rows": len(self.train),
            "holdout_rows": len(self.holdout),
            "symbols": ",".join(sorted(set(self.train.meta["symbol"]) | set(self.holdout.meta["symbol"]))),
            "features": ",".join(FEATURE_NAMES),
        }


def train(frame: pd.DataFrame, params: TrainParams) -> TrainResult:
    """Label + features -> time split (one cutoff for all symbols) -> fit on the past -> score the hold-out."""
    dataset = make_dataset(frame)
    if len(dataset) == 0:
        raise ValueError("no labelled rows with complete features (indicators still warming up?)")
    cutoff = params.cutoff_date or default_cutoff(dataset, params.holdout_fraction)
    train_set, holdout = time_split(dataset, cutoff)
    if len(train_set) < params.min_train_rows or len(holdout) < params.min_holdout_rows:
        raise ValueError(
            f"split at {cutoff} leaves {len(train_set)} training and {len(holdout)} hold-out rows "
            f"(need {params.min_train_rows} and {params.min_holdout_rows})"
        )
    if train_set.y.nunique() < 2:
        raise ValueError(f"training rows before {cutoff} have a single class: nothing to learn")
    model = build_estimator(params)
    model.fit(train_set.X, train_set.y)
    return TrainResult(
        model=model,
        params=params,
        cutoff=cutoff,
        train=train_set,
        holdout=holdout,
        metrics=evaluate(model, holdout),
        train_metrics=evaluate(model, train_set),
    )
