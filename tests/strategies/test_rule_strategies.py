"""Rule strategies on hand-made feature rows; every expected confidence is worked out in the comment beside it."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal

import pytest

from include.config.models import MacdMomentumParams, RsiMeanReversionParams, SmaCrossoverParams
from include.strategies.base import Signal
from include.strategies.macd_momentum import macd_momentum_signal
from include.strategies.rsi_mean_reversion import rsi_mean_reversion_signal
from include.strategies.sma_crossover import sma_crossover_signal

D1, D0 = date(2025, 3, 4), date(2025, 3, 3)
SMA = SmaCrossoverParams(model="sma_crossover")  # sma_20 / sma_50, full confidence at 0.25 ATR
RSI = RsiMeanReversionParams(model="rsi_mean_reversion")  # 30 / 70, full confidence 15 points beyond
MACD = MacdMomentumParams(model="macd_momentum")  # full confidence at 0.1 ATR


def row(session: date = D1, **values: object) -> dict:
    return {"symbol": "TSLA", "session_date": session, "close": 250.0, "atr_14": 5.0, **values}


# --- SMA crossover -------------------------------------------------------------------------------------------


def test_sma_golden_cross_buy():
    # gap -0.5 -> +1.0 crosses up; |1.0| / 5.0 ATR = 0.2 ATR; 0.5 + 0.5 * 0.2 / 0.25 = 0.9
    sig = sma_crossover_signal("TSLA", row(sma_20=101.0, sma_50=100.0), row(D0, sma_20=99.5, sma_50=100.0), SMA, 1)
    assert (sig.action, sig.confidence) == ("BUY", 0.9)
    assert sig.inputs == {"sma_20": 101.0, "sma_50": 100.0, "atr_14": 5.0, "close": 250.0,
                          "previous_sma_20": 99.5, "previous_sma_50": 100.0}
    assert (sig.price_reference, sig.price_source, sig.session_date) == (250.0, "close", D1)
    assert (sig.strategy_id, sig.model) == (1, "sma_crossover")


def test_sma_death_cross_sell_and_cap_at_one():
    # gap +0.2 -> -3.0 crosses down; 3.0 / 5.0 = 0.6 ATR >= 0.25 -> capped at 1.0
    sig = sma_crossover_signal("TSLA", row(sma_20=97.0, sma_50=100.0), row(D0, sma_20=100.2, sma_50=100.0), SMA, 1)
    assert (sig.action, sig.confidence) == ("SELL", 1.0)


def test_sma_cross_by_a_hair_is_weak():
    # gap 0 -> +0.01: 0.01 / 5 = 0.002 ATR; 0.5 + 0.5 * 0.002 / 0.25 = 0.504 (under the 0.7 risk floor)
    sig = sma_crossover_signal("TSLA", row(sma_20=100.01, sma_50=100.0), row(D0, sma_20=100.0, sma_50=100.0), SMA, 1)
    assert (sig.action, sig.confidence) == ("BUY", 0.504)


def test_sma_no_cross_is_hold():
    sig = sma_crossover_signal("TSLA", row(sma_20=102.0, sma_50=100.0), row(D0, sma_20=101.0, sma_50=100.0), SMA, 1)
    assert (sig.action, sig.confidence) == ("HOLD", 0.0)
    assert "no crossover; sma_20 stays above sma_50" in sig.rationale


def test_sma_other_averages_and_snapshot_price():
    params = SmaCrossoverParams(model="sma_crossover", fast="ema_12", slow="ema_26", full_confidence_atr=0.5)
    # gap -1 -> +1.5: 1.5 / 5 = 0.3 ATR; 0.5 + 0.5 * 0.3 / 0.5 = 0.8
    latest = row(ema_12=51.5, ema_26=50.0, snapshot_last_price=251.25)
    sig = sma_crossover_signal("TSLA", latest, row(D0, ema_12=49.0, ema_26=50.0), params, 9)
    assert (sig.action, sig.confidence, sig.price_reference, sig.price_source) == ("BUY", 0.8, 251.25,
                                                                                   "snapshot_last")


def test_sma_accepts_decimals_from_postgres():
    sig = sma_crossover_signal("TSLA", row(sma_20=Decimal("101"), sma_50=Decimal("100"), atr_14=Decimal("5")),
                               row(D0, sma_20=Decimal("99.5"), sma_50=Decimal("100")), SMA, 1)
    assert (sig.action, sig.confidence) == ("BUY", 0.9)


@pytest.mark.parametrize(
    ("latest", "previous", "reason"),
    [
        (row(sma_20=None, sma_50=100.0), row(D0, sma_20=99.0, sma_50=100.0), "missing or NULL features sma_20"),
        (row(sma_20=101.0, sma_50=100.0), None, "previous.sma_20, previous.sma_50"),
        (row(sma_20=101.0, sma_50=100.0), row(D0, sma_20=99.0), "previous.sma_50"),
        (row(sma_20=math.nan, sma_50=100.0), row(D0, sma_20=99.0, sma_50=100.0), "sma_20"),
        (row(sma_20="101", sma_50=100.0), row(D0, sma_20=99.0, sma_50=100.0), "sma_20"),
        (row(sma_20=101.0, sma_50=100.0, atr_14=None), row(D0, sma_20=99.0, sma_50=100.0), "atr_14"),
        (row(sma_20=101.0, sma_50=100.0, atr_14=0.0), row(D0, sma_20=99.0, sma_50=100.0), "atr_14=0.0 is not positive"),
        (row(sma_20=101.0, sma_50=100.0), row(D1, sma_20=99.0, sma_50=100.0), "previous session row is not older"),
        (None, None, "no feature row"),
    ],
)
def test_sma_missing_data_is_hold_with_reason(latest, previous, reason):
    sig = sma_crossover_signal("TSLA", latest, previous, SMA, 1)
    assert (sig.action, sig.confidence) == ("HOLD", 0.0)
    assert reason in sig.rationale


# --- RSI mean reversion --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rsi", "action", "confidence"),
    [
        (22.5, "BUY", 0.75),  # 7.5 below 30: 0.5 + 0.5 * 7.5 / 15
        (29.7, "BUY", 0.51),  # 0.3 below: 0.5 + 0.5 * 0.3 / 15 = 0.5 + 0.01
        (10.0, "BUY", 1.0),  # 20 below >= 15: capped
        (77.5, "SELL", 0.75),  # 7.5 above 70
        (88.0, "SELL", 1.0),
        (30.0, "HOLD", 0.0),  # the thresholds themselves do not trigger
        (70.0, "HOLD", 0.0),
        (50.0, "HOLD", 0.0),
    ],
)
def test_rsi_thresholds_and_confidence(rsi, action, confidence):
    sig = rsi_mean_reversion_signal("TSLA", row(rsi_14=rsi), RSI, 2)
    assert (sig.action, sig.confidence) == (action, confidence)
    assert sig.inputs == {"rsi_14": rsi, "close": 250.0}


def test_rsi_custom_thresholds():
    params = RsiMeanReversionParams(model="rsi_mean_reversion", oversold=20, overbought=80,
                                    full_confidence_distance=10)
    assert rsi_mean_reversion_signal("TSLA", row(rsi_14=25.0), params, 2).action == "HOLD"
    sig = rsi_mean_reversion_signal("TSLA", row(rsi_14=17.0), params, 2)  # 3 below 20: 0.5 + 0.5 * 3 / 10
    assert (sig.action, sig.confidence) == ("BUY", 0.65)


@pytest.mark.parametrize("features", [row(rsi_14=None), row(rsi_14=math.inf), row(close=None, rsi_14=20.0), None])
def test_rsi_missing_is_hold(features):
    sig = rsi_mean_reversion_signal("TSLA", features, RSI, 2)
    assert (sig.action, sig.confidence) == ("HOLD", 0.0)
    assert "HOLD:" in sig.rationale


# --- MACD momentum -------------------------------------------------------------------------------------------


def macd_row(hist: float, macd: float = 1.0) -> dict:
    return row(macd=macd, macd_signal=macd - hist, macd_hist=hist)


def test_macd_bullish_cross_buy():
    # histogram -0.1 -> +0.3: 0.3 / 5 = 0.06 ATR; 0.5 + 0.5 * 0.06 / 0.1 = 0.8
    sig = macd_momentum_signal("TSLA", macd_row(0.3), row(D0, macd_hist=-0.1), MACD, 3)
    assert (sig.action, sig.confidence) == ("BUY", 0.8)
    assert sig.inputs["previous_macd_hist"] == -0.1


def test_macd_bearish_cross_sell():
    # +0.2 -> -0.75: 0.15 ATR >= 0.1 -> 1.0
    sig = macd_momentum_signal("TSLA", macd_row(-0.75, macd=-0.5), row(D0, macd_hist=0.2), MACD, 3)
    assert (sig.action, sig.confidence) == ("SELL", 1.0)


def test_macd_zero_line_filter():
    params = MacdMomentumParams(model="macd_momentum", require_zero_line=True)
    below = macd_momentum_signal("TSLA", macd_row(0.3, macd=-0.4), row(D0, macd_hist=-0.1), params, 3)
    assert below.action == "HOLD" and "wrong side of zero" in below.rationale
    above = macd_momentum_signal("TSLA", macd_row(0.3, macd=0.4), row(D0, macd_hist=-0.1), params, 3)
    assert (above.action, above.confidence) == ("BUY", 0.8)


def test_macd_no_cross_and_missing():
    assert macd_momentum_signal("TSLA", macd_row(0.3), row(D0, macd_hist=0.1), MACD, 3).action == "HOLD"
    sig = macd_momentum_signal("TSLA", macd_row(0.3), row(D0, macd_hist=None), MACD, 3)
    assert sig.action == "HOLD" and "previous.macd_hist" in sig.rationale


@pytest.mark.parametrize(("value", "expected"), [("2025-03-04", D1), ("2025-03-04T00:00:00", D1), ("garbled", None)])
def test_session_date_from_xcom_strings(value, expected):
    sig = rsi_mean_reversion_signal("TSLA", row(session=value, rsi_14=50.0), RSI, 2)
    assert sig.session_date == expected and sig.action == "HOLD"


def test_signal_round_trips_through_json():
    sig = macd_momentum_signal("TSLA", macd_row(0.3), row(D0, macd_hist=-0.1), MACD, 3)
    assert Signal.model_validate(sig.to_dict()) == sig
    with pytest.raises(ValueError):
        Signal.model_validate({**sig.to_dict(), "confidence": 1.2})
