"""Labels, the time-ordered split and the shared feature function, on hand-built frames (no database)."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from include.ml.features import (
    FEATURE_NAMES,
    LABEL,
    SOURCE_COLUMNS,
    add_labels,
    build_features,
    default_cutoff,
    features_from_row,
    make_dataset,
    time_split,
)


def _row(symbol: str, day: date, close: float, **overrides: float) -> dict:
    base = {"close": close, "sma_20": close * 0.98, "sma_50": close * 0.95, "ema_12": close * 0.99,
            "ema_26": close * 0.97, "macd_hist": close * 0.001, "rsi_14": 55.0, "bb_upper": close * 1.05,
            "bb_middle": close, "bb_lower": close * 0.95, "atr_14": close * 0.02, "volume_zscore_20": 0.3,
            "return_simple": 0.01}  # fmt: skip
    return {"symbol": symbol, "session_date": day, **base, **overrides}


def test_label_is_the_next_sessions_direction_per_symbol():
    d = [date(2025, 3, 3) + timedelta(days=i) for i in range(4)]
    frame = pd.DataFrame([  # shuffled on purpose: labels follow session order within each symbol
        _row("NVDA", d[2], 10.0), _row("TSLA", d[1], 101.0), _row("TSLA", d[0], 100.0),
        _row("NVDA", d[0], 12.0), _row("TSLA", d[3], 101.0), _row("TSLA", d[2], 101.0), _row("NVDA", d[1], 11.0),
    ])  # fmt: skip
    labelled = add_labels(frame)
    got = {(r.symbol, r.session_date): r[LABEL] for _, r in labelled.iterrows()}
    assert got[("TSLA", d[0])] == 1.0  # 100 -> 101 up
    assert got[("TSLA", d[1])] == 0.0  # 101 -> 101 flat counts as not up
    assert got[("TSLA", d[2])] == 0.0
    assert math.isnan(got[("TSLA", d[3])])  # last session: no next close
    assert got[("NVDA", d[0])] == 0.0 and got[("NVDA", d[1])] == 0.0  # 12 -> 11 -> 10 down, never TSLA's rows
    assert math.isnan(got[("NVDA", d[2])])
    dataset = make_dataset(frame)
    assert len(dataset) == 5  # the two last sessions are dropped
    assert dataset.y.tolist() == [0, 0, 1, 0, 0]  # NVDA d0, d1; TSLA d0, d1, d2
    assert (dataset.meta["next_session_date"] > dataset.meta["session_date"]).all()


def test_warm_up_rows_without_indicators_are_dropped():
    d = [date(2025, 3, 3) + timedelta(days=i) for i in range(3)]
    frame = pd.DataFrame([_row("TSLA", d[0], 100.0, sma_50=None), _row("TSLA", d[1], 101.0), _row("TSLA", d[2], 99.0)])
    dataset = make_dataset(frame)
    assert dataset.meta["session_date"].tolist() == [d[1]] and dataset.y.tolist() == [0]


def _panel(symbols=("AAA", "BBB", "CCC"), sessions=60):
    start = date(2025, 1, 1)
    rng = np.random.default_rng(1)
    rows = [_row(s, start + timedelta(days=i), float(100 + rng.normal())) for s in symbols for i in range(sessions)]
    return pd.DataFrame(rows)


def test_time_split_has_one_cutoff_no_overlap_and_no_shuffling():
    dataset = make_dataset(_panel())
    cutoff = default_cutoff(dataset, 0.25)
    train, holdout = time_split(dataset, cutoff)
    assert max(train.meta["session_date"]) < cutoff <= min(holdout.meta["session_date"])
    assert max(train.meta["session_date"]) < min(holdout.meta["session_date"])
    # No training label looks at a hold-out session (the session right before the cutoff is purged).
    assert (train.meta["next_session_date"] < cutoff).all()
    assert set(train.meta["symbol"]) == set(holdout.meta["symbol"]) == {"AAA", "BBB", "CCC"}
    for part in (train, holdout):  # time order kept within each symbol, nothing shuffled
        for _, dates in part.meta.groupby("symbol")["session_date"]:
            assert dates.is_monotonic_increasing
    assert len(train) + len(holdout) == len(dataset) - 3  # only the purged session per symbol is left out
    sessions = sorted(set(dataset.meta["session_date"]))
    assert sum(d >= cutoff for d in sessions) == round(len(sessions) * 0.25)


def test_features_are_scale_free_and_the_serving_path_builds_the_same_values():
    frame = pd.DataFrame([_row("TSLA", date(2025, 3, 3), 250.0), _row("NVDA", date(2025, 3, 3), 25.0)])
    features = build_features(frame)
    assert list(features.columns) == list(FEATURE_NAMES)
    pd.testing.assert_series_equal(features.iloc[0], features.iloc[1], check_names=False)  # price level is gone
    assert features.iloc[0]["bb_position"] == pytest.approx(0.5) and features.iloc[0]["rsi_14_scaled"] == 0.55
    served, missing = features_from_row({**frame.iloc[0].to_dict(), "snapshot_last_price": 260.0, "open": 1.0})
    assert missing == []
    pd.testing.assert_frame_equal(served.reset_index(drop=True), features.iloc[[0]].reset_index(drop=True))


@pytest.mark.parametrize("junk", [None, math.nan, math.inf, "12.5x", True, [], {}])
def test_junk_or_missing_inputs_become_missing_features(junk):
    row = _row("TSLA", date(2025, 3, 3), 100.0, sma_20=junk)
    _, missing = features_from_row(row)
    assert missing == ["close_to_sma_20", "sma_20_to_sma_50"]
    complete = _row("TSLA", date(2025, 3, 3), 100.0)
    _, missing = features_from_row({c: complete[c] for c in SOURCE_COLUMNS if c != "rsi_14"})  # column absent
    assert missing == ["rsi_14_scaled"]
    _, missing = features_from_row({**_row("TSLA", date(2025, 3, 3), 100.0), "close": 0.0})
    assert "close_to_sma_20" in missing and "atr_to_close" in missing
