"""Training on a dbt-built mart (simulator bars, 3 symbols x 2 years), MLflow logging, registration, champion
promotion only when better on the same hold-out, and the ``ml`` strategy serving ``@champion``."""

from __future__ import annotations

import math

import pytest

from tests.ml.ml_mart import SYMBOLS, build_mart, momentum_bars


@pytest.fixture(scope="module")
def mart(market_db_url, simulator_server, tmp_path_factory):
    """The session database with momentum bars and the marts built (module scope: dbt runs once here)."""
    import psycopg2

    with psycopg2.connect(market_db_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'analytics%'")
        for (schema,) in cur.fetchall():
            cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
        cur.execute("TRUNCATE raw.daily_bars, staging.daily_bars")
    momentum_bars(market_db_url, simulator_server)
    build_mart(market_db_url, tmp_path_factory.mktemp("dbt-target"))
    from include.ml.features import load_training_frame

    return market_db_url, load_training_frame(market_db_url)


def _train(frame, run_name, **params):
    from include.ml.registry import experiment_name, log_and_register, model_name
    from include.ml.train import TrainParams, train
    from include.tracking import client, ensure_experiment

    result = train(frame, TrainParams(**params))
    run = client().create_run(ensure_experiment(experiment_name()), run_name=run_name)
    version = log_and_register(result, run.info.run_id, name=model_name())
    return result, run.info.run_id, version


def _champion(name):
    from include.tracking import client

    return str(client().get_model_version_by_alias(name, "champion").version)


def test_train_register_and_promote_only_when_better(mart, model_name):
    from include.ml.features import FEATURE_NAMES
    from include.ml.registry import promote_if_better
    from include.tracking import client

    _, frame = mart
    assert sorted(frame["symbol"].unique()) == sorted(SYMBOLS) and len(frame) == 3 * 504
    mlflow = client()

    # v1: a base-rate baseline (ROC AUC exactly 0.5). The first model becomes champion whatever it scores.
    baseline, run1, v1 = _train(frame, "baseline", model_type="dummy")
    assert v1 == "1"
    assert max(baseline.train.meta["session_date"]) < min(baseline.holdout.meta["session_date"])
    assert baseline.metrics["roc_auc"] == 0.5
    out = promote_if_better(model_name, v1, baseline.holdout, run1)
    assert out["promoted"] and out["reason"] == "first registered model" and _champion(model_name) == "1"

    # v2: logistic regression on the momentum features beats it on the same hold-out -> the alias moves.
    logistic, run2, v2 = _train(frame, "logistic", model_type="logistic_regression")
    assert logistic.cutoff == baseline.cutoff and len(logistic.holdout) == len(baseline.holdout)
    assert logistic.metrics["roc_auc"] > 0.58, logistic.metrics  # the AR(1) momentum is learnable
    out = promote_if_better(model_name, v2, logistic.holdout, run2)
    assert out["promoted"] and out["previous_champion"] == "1" and _champion(model_name) == "2"
    assert out["champion_metrics"]["roc_auc"] == 0.5  # v1 re-scored on v2's hold-out rows
    run = mlflow.get_run(run2)
    assert run.data.tags["promoted"] == "true" and run.data.metrics["champion_holdout_roc_auc"] == 0.5
    for key in ("holdout_accuracy", "holdout_log_loss", "holdout_roc_auc", "holdout_precision", "holdout_base_rate"):
        assert key in run.data.metrics, key
    assert run.data.params["model_type"] == "logistic_regression"
    assert run.data.params["cutoff_date"] == logistic.cutoff.isoformat()
    assert 0 < run.data.metrics["holdout_base_rate"] < 1

    # v3: the same model on the same data ties v2: not better -> registered, but the alias stays on v2.
    again, run3, v3 = _train(frame, "tie", model_type="logistic_regression")
    assert again.metrics == logistic.metrics
    out = promote_if_better(model_name, v3, again.holdout, run3)
    assert not out["promoted"] and "does not beat champion v2" in out["reason"] and _champion(model_name) == "2"
    assert mlflow.get_run(run3).data.tags["promoted"] == "false"
    mv3 = mlflow.get_model_version(model_name, v3)
    assert mv3.aliases == [] and mv3.tags["promoted"] == "false" and mv3.tags["compared_with"] == "2"

    # v4: worse by construction (the baseline again) -> not promoted either.
    worse, run4, v4 = _train(frame, "worse", model_type="dummy")
    assert not promote_if_better(model_name, v4, worse.holdout, run4)["promoted"] and _champion(model_name) == "2"

    # The logged model carries a signature over exactly the shared features, and an input example.
    from mlflow.models import get_model_info

    info = get_model_info(f"models:/{model_name}@champion")
    assert tuple(info.signature.inputs.input_names()) == FEATURE_NAMES
    assert info.saved_input_example_info is not None


def test_ml_strategy_serves_the_champion_with_probability_confidence(mart, model_name):
    import pandas as pd

    from include.config.models import MLParams
    from include.ml.features import build_features
    from include.ml.registry import ModelNotFoundError, load_champion
    from include.strategies.ml_signal import MLSignalStrategy
    from include.strategies.registry import generate_signals

    _, frame = mart
    params = MLParams(model="ml", registered_model=model_name, threshold=0.55)
    with pytest.raises(ModelNotFoundError, match=f"models:/{model_name}@champion"):
        MLSignalStrategy(strategy_id=9, params=params).generate("TSLA", frame.iloc[-1].to_dict())
    (hold,) = generate_signals(MLSignalStrategy(strategy_id=9, params=params), ["TSLA"],
                               {"TSLA": frame.iloc[-1].to_dict()})  # fmt: skip
    assert hold.action == "HOLD" and "ModelNotFoundError" in hold.rationale  # never BUY/SELL without a model

    _, run, version = _train(frame, "serve", model_type="logistic_regression")
    from include.ml.registry import promote_if_better
    from include.ml.train import TrainParams, train

    promote_if_better(model_name, version, train(frame, TrainParams()).holdout, run)
    champion = load_champion(model_name)
    assert champion.version == version and load_champion(model_name) is champion  # cached per process/version

    rows = frame[frame["session_date"] >= frame["session_date"].max() - pd.Timedelta(days=120)].dropna()
    p_up = champion.prob_up(build_features(rows))
    best, worst = rows.iloc[int(p_up.argmax())].to_dict(), rows.iloc[int(p_up.argmin())].to_dict()
    assert p_up.max() >= 0.55 and p_up.min() <= 0.45, (p_up.min(), p_up.max())
    strategy = MLSignalStrategy(strategy_id=9, params=params)
    buy = strategy.generate(best["symbol"], best)
    sell = strategy.generate(worst["symbol"], worst)
    assert (buy.action, buy.model, buy.strategy_id) == ("BUY", "ml", 9)
    assert buy.confidence == pytest.approx(p_up.max(), abs=1e-6) and buy.inputs["model_version"] == version
    assert sell.action == "SELL" and sell.confidence == pytest.approx(1 - p_up.min(), abs=1e-6)
    assert buy.price_reference == best["close"] and buy.session_date == best["session_date"]
    strict = MLSignalStrategy(strategy_id=9, params=MLParams(model="ml", registered_model=model_name, threshold=1.0))
    hold = strict.generate(best["symbol"], best)
    assert hold.action == "HOLD" and hold.confidence == 0.0 and "below the threshold 1.0" in hold.rationale
    assert hold.inputs["p_up"] == pytest.approx(p_up.max(), abs=1e-6)
    warm_up = strategy.generate("TSLA", {**best, "sma_50": None})
    assert warm_up.action == "HOLD" and "close_to_sma_50" in warm_up.rationale
    assert not math.isnan(buy.confidence)
