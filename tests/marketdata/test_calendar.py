from datetime import UTC, date, datetime, timedelta

import pytest

from include.marketdata.calendar import MarketCalendar

CAL = MarketCalendar("XNYS")


def test_holidays_and_weekends_are_not_sessions():
    assert not CAL.is_session(date(2024, 7, 4))  # Independence Day
    assert not CAL.is_session(date(2024, 12, 25))
    assert not CAL.is_session(date(2024, 11, 30))  # Saturday
    assert CAL.is_session(date(2024, 11, 29))


def test_early_close_day_after_thanksgiving():
    s = CAL.session(date(2024, 11, 29))
    assert s.close == datetime(2024, 11, 29, 18, 0, tzinfo=UTC)  # 13:00 New York
    assert s.is_early_close
    assert CAL.is_open(datetime(2024, 11, 29, 17, 59, tzinfo=UTC))
    assert not CAL.is_open(datetime(2024, 11, 29, 18, 30, tzinfo=UTC))  # a weekday-cron would say open


def test_daylight_saving_shifts_utc_open():
    assert CAL.session(date(2024, 7, 1)).open == datetime(2024, 7, 1, 13, 30, tzinfo=UTC)
    assert CAL.session(date(2024, 12, 2)).open == datetime(2024, 12, 2, 14, 30, tzinfo=UTC)


def test_last_completed_session_and_navigation():
    assert CAL.last_completed_session(datetime(2024, 7, 5, 12, tzinfo=UTC)) == date(2024, 7, 3)
    assert CAL.last_completed_session(datetime(2024, 7, 5, 20, 0, tzinfo=UTC)) == date(2024, 7, 5)
    assert CAL.next_session(date(2024, 7, 3)) == date(2024, 7, 5)
    assert CAL.previous_session(date(2024, 7, 5)) == date(2024, 7, 3)
    assert CAL.sessions_back(date(2024, 7, 5), 3) == date(2024, 7, 1)
    assert CAL.sessions_between(date(2024, 7, 1), date(2024, 7, 8)) == [
        date(2024, 7, 1),
        date(2024, 7, 2),
        date(2024, 7, 3),
        date(2024, 7, 5),
        date(2024, 7, 8),
    ]


def test_open_and_next_open_agree_with_exchange_calendars_minute_by_minute():
    """``is_open``/``next_open``/``next_close`` read session bounds, not the library's minute index (issue #14): the
    same answers as exchange_calendars around every open and close of 2024 (early closes, holidays, DST) and at random
    instants, and the minute index is never built."""
    import random

    import pandas as pd

    from include.marketdata.calendar import _calendar

    cal = MarketCalendar("XNYS")
    oracle = _calendar("XNYS")
    assert "minutes_nanos" not in oracle.__dict__
    instants = []
    for day in cal.sessions_between(date(2023, 12, 20), date(2025, 1, 10)):
        s = cal.session(day)
        for edge in (s.open, s.close):
            instants += [edge + timedelta(seconds=k) for k in (-61, -1, 0, 1, 59, 60)]
    rng = random.Random(14)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    instants += [start + timedelta(seconds=rng.randrange(366 * 86400)) for _ in range(2000)]
    ours = [(cal.is_open(at), cal.next_open(at), cal.next_close(at)) for at in instants]
    assert "minutes_nanos" not in oracle.__dict__  # before the library's own answers build it below
    assert sum(open_ for open_, _, _ in ours) > 1000  # both answers are well represented
    for at, mine in zip(instants, ours, strict=True):
        ts = pd.Timestamp(at).tz_convert("UTC").floor("min")
        theirs = (bool(oracle.is_open_on_minute(ts, ignore_breaks=True)), oracle.next_open(at).to_pydatetime(),
                  oracle.next_close(at).to_pydatetime())
        assert mine == theirs, at
    with pytest.raises(ValueError, match="outside the XNYS calendar"):
        cal.is_open(datetime(1999, 6, 1, 15, tzinfo=UTC))
    with pytest.raises(ValueError, match="naive"):
        cal.next_open(datetime(2024, 7, 1, 15))


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="naive"):
        CAL.is_open(datetime(2024, 7, 1, 15))
    with pytest.raises(ValueError, match="not a XNYS trading session"):
        CAL.session(date(2024, 7, 4))


def test_a_process_builds_a_calendar_once_and_again_when_it_nears_its_end(monkeypatch):
    """The scheduler builds the calendar before forking task processes (warm()); one built long ago enough to end
    within _FRESH_FOR is built again instead of answering past its last session."""
    import time

    from include.marketdata import calendar

    monkeypatch.setattr(calendar, "_CALENDARS", {})
    calendar.warm()
    built, refresh_after = calendar._CALENDARS["XNYS"]
    assert calendar.MarketCalendar()._cal is built  # no second build
    last = built.last_session.to_pydatetime().replace(tzinfo=UTC)
    assert refresh_after == pytest.approx((last - calendar._FRESH_FOR).timestamp())
    assert refresh_after > time.time() + 200 * 86400  # a year ahead, rebuilt ~9 months on

    calendar._CALENDARS["XNYS"] = (built, time.time() - 1)  # as if built in the scheduler ten months ago
    later = calendar._year_ahead() + timedelta(days=300)
    monkeypatch.setattr(calendar, "_year_ahead", lambda: later)
    again = calendar.MarketCalendar()._cal
    assert again is not built
    assert calendar._CALENDARS["XNYS"][0] is again
    assert built.last_session.date() < again.last_session.date() <= later  # it reaches a year past the rebuild
    assert MarketCalendar().is_session(date(2025, 12, 24)) and not MarketCalendar().is_session(date(2025, 12, 25))
