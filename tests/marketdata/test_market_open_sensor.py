"""``MarketOpenSensor`` with the guide's parameters: market_config (hours, days, timezone), poke_interval, timeout."""

from datetime import UTC, datetime

import pytest

from include.config.workflow import MarketConfig
from include.marketdata.sensors import MarketOpenSensor, next_trading_time

LATE_START = {"trading_hours": {"start": "10:00", "end": "15:00", "timezone": "America/New_York"},
              "trading_days": [1, 2, 3, 4]}  # no Fridays


def test_guide_parameters_are_taken():
    sensor = MarketOpenSensor(task_id="market_open", market_config=LATE_START, poke_interval=30, timeout=600)
    assert sensor.poke_interval == 30 and sensor.timeout == 600 and sensor.mode == "reschedule"
    assert isinstance(sensor.market_config, MarketConfig) and sensor.config.trading_days == (1, 2, 3, 4)
    with pytest.raises(ValueError, match="start"):
        MarketOpenSensor(task_id="m", market_config={"trading_hours": {"start": "25:00"}})


def test_default_config_is_the_workflow_file_and_the_calendar(monkeypatch):
    sensor = MarketOpenSensor(task_id="market_open")
    assert sensor.market_config is None  # nothing read at parse time
    monkeypatch.setenv("TRADING_CLOCK", "2024-07-05T13:35:00Z")  # Friday 09:35 ET
    assert sensor.poke({}) is True and sensor.exchange == "XNYS"


@pytest.mark.parametrize(("now", "is_open"), [
    ("2024-07-01T13:45:00Z", False),  # Monday 09:45 ET: exchange open, before the configured 10:00
    ("2024-07-01T14:00:00Z", True),   # 10:00 ET
    ("2024-07-01T19:00:00Z", False),  # 15:00 ET: configured end
    ("2024-07-05T15:00:00Z", False),  # Friday: not a configured day
    ("2024-07-04T15:00:00Z", False),  # Thursday, Independence Day: the calendar still applies
])
def test_hours_and_days_narrow_the_exchange_session(monkeypatch, now, is_open):
    monkeypatch.setenv("TRADING_CLOCK", now)
    assert MarketOpenSensor(task_id="m", market_config=LATE_START).poke({}) is is_open


def test_next_trading_time_skips_closed_days_and_early_minutes():
    config = MarketConfig.model_validate(LATE_START)
    # Wednesday July 3 after the configured end -> Thursday is a holiday, Friday not configured -> Monday 10:00 ET
    assert next_trading_time(config, datetime(2024, 7, 3, 20, 0, tzinfo=UTC)) == datetime(2024, 7, 8, 14, 0,
                                                                                           tzinfo=UTC)
    assert next_trading_time(MarketConfig(), datetime(2024, 7, 3, 20, 0, tzinfo=UTC)) == datetime(
        2024, 7, 5, 13, 30, tzinfo=UTC)  # the default config is the exchange's own session
