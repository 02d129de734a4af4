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
