"""Exchange calendar (holidays, early closes, session times) on top of ``exchange_calendars``.

Safe to import at DAG parse time: ``exchange_calendars`` is imported on first use (docs/scheduling.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

DEFAULT_EXCHANGE = "XNYS"
# Calendars are built from here (exchange_calendars' default, 20 years back, is too short for backfills) to a year
# ahead (its default end).
_CALENDAR_START = "2000-01-03"


# One calendar per exchange and process. It ends a year after it was built (exchange_calendars' default end); a
# process that lives that long (the scheduler builds them before forking task processes: warm()) builds it again
# once fewer than _FRESH_FOR remain before its last session.
_FRESH_FOR = timedelta(days=90)
_CALENDARS: dict[str, tuple[Any, float]] = {}  # exchange -> (calendar, time.time() after which it is rebuilt)


def _calendar(exchange: str) -> Any:
    cached = _CALENDARS.get(exchange)
    if cached is not None and time.time() < cached[1]:
        return cached[0]
    import exchange_calendars as xcals

    # exchange_calendars caches calendars by these arguments: a rebuild months on is a new calendar by its end
    cal = xcals.get_calendar(exchange, start=_CALENDAR_START, end=_year_ahead().isoformat())
    last = datetime.combine(cal.last_session.date(), datetime.min.time(), UTC)
    _CALENDARS[exchange] = (cal, max((last - _FRESH_FOR).timestamp(), time.time() + 3600))  # at most a build an hour
    return cal


def _year_ahead() -> date:
    return date.today() + timedelta(days=365)  # exchange_calendars' default end


def warm(exchanges: Iterable[str] = (DEFAULT_EXCHANGE,)) -> None:
    """Build these exchanges' calendars now (~0.15 s each): processes forked from this one inherit them, with the
    look-ups exchange_calendars caches on first use (a session's open and close, a window of sessions: ~5 ms of a
    task's first ``last_completed_session`` and ``sessions_back``)."""
    for exchange in exchanges:
        _calendar(exchange)
        calendar = MarketCalendar(exchange)
        calendar.sessions_back(calendar.last_completed_session(datetime.now(UTC)), 1)


def _utc(ts: Any) -> datetime:
    return ts.to_pydatetime().astimezone(UTC)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: pass a timezone-aware time")
    return at


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _minute_nanos(at: datetime) -> int:
    """``at``'s minute (seconds dropped, as exchange_calendars reads a time) as UTC nanoseconds since the epoch."""
    utc = _aware(at).astimezone(UTC).replace(second=0, microsecond=0)
    return int((utc - _EPOCH).total_seconds()) * 1_000_000_000


def _utc_from_nanos(nanos: int) -> datetime:
    return _EPOCH + timedelta(microseconds=nanos // 1000)


@dataclass(frozen=True)
class Session:
    date: date
    open: datetime  # UTC
    close: datetime  # UTC

    @property
    def is_early_close(self) -> bool:
        return (self.close - self.open) < timedelta(hours=6, minutes=30)


@dataclass(frozen=True)
class MarketCalendar:
    """Sessions of one exchange. All datetimes in and out are timezone-aware (UTC out)."""

    exchange: str = DEFAULT_EXCHANGE

    @property
    def _cal(self) -> Any:
        return _calendar(self.exchange)

    def is_session(self, day: date) -> bool:
        return bool(self._cal.is_session(day.isoformat()))

    def session(self, day: date) -> Session:
        if not self.is_session(day):
            raise ValueError(f"{day.isoformat()} is not a {self.exchange} trading session")
        label = day.isoformat()
        return Session(day, _utc(self._cal.session_open(label)), _utc(self._cal.session_close(label)))

    def sessions_between(self, start: date, end: date) -> list[date]:
        """Trading sessions in [start, end], both inclusive."""
        if end < start:
            return []
        labels = self._cal.sessions_in_range(start.isoformat(), end.isoformat())
        return [ts.date() for ts in labels]

    def is_open(self, at: datetime) -> bool:
        """True while the regular session is trading (honours holidays and early closes): a session's open up to,
        not including, its close, at minute resolution (exchange_calendars' ``is_open_on_minute`` without breaks)."""
        import numpy as np

        minute = _minute_nanos(at)
        opens, closes = self._bounded(minute)
        i = int(np.searchsorted(opens, minute, side="right")) - 1
        return i >= 0 and minute < int(closes[i])

    def _bounded(self, minute: int) -> tuple[Any, Any]:
        """The session opens and closes as UTC nanoseconds, after checking ``minute`` lies within the calendar.

        Sessions, not exchange_calendars' minute index: every trading minute from 2000 to a year ahead (~2.6M,
        built on a calendar's first minute query: ~0.15 s of a task process, which the scheduler's warm-up does
        not build). A binary search over ~7,000 opens answers the same."""
        cal = self._cal
        opens, closes = cal.opens_nanos, cal.closes_nanos
        if not int(opens[0]) <= minute <= int(closes[-1]):
            raise ValueError(f"{_utc_from_nanos(minute).isoformat()} is outside the {self.exchange} calendar "
                             f"({cal.first_session.date()} to {cal.last_session.date()})")
        return opens, closes

    def last_completed_session(self, at: datetime) -> date:
        """The latest session whose close is at or before ``at``."""
        _aware(at)
        day = at.astimezone(UTC).date() + timedelta(days=1)
        for _ in range(15):
            if self.is_session(day) and self.session(day).close <= at:
                return day
            day -= timedelta(days=1)
        raise ValueError(f"no completed {self.exchange} session in the 15 days before {at.isoformat()}")

    def next_session(self, day: date) -> date:
        """The first session strictly after ``day``."""
        return self._cal.date_to_session((day + timedelta(days=1)).isoformat(), direction="next").date()

    def previous_session(self, day: date) -> date:
        """The last session strictly before ``day``."""
        return self._cal.date_to_session((day - timedelta(days=1)).isoformat(), direction="previous").date()

    def sessions_back(self, day: date, count: int) -> date:
        """The session ``count`` sessions before ``day`` (``day`` itself must be a session)."""
        if count <= 0:
            return day
        labels = self._cal.sessions_window(day.isoformat(), -(count + 1))
        return labels[0].date()

    def next_open(self, at: datetime) -> datetime:
        """The first session open after ``at`` (a session open itself: the next session's)."""
        return self._following(at, opens=True)

    def next_close(self, at: datetime) -> datetime:
        """The first session close after ``at``."""
        return self._following(at, opens=False)

    def _following(self, at: datetime, *, opens: bool) -> datetime:
        import numpy as np

        minute = _minute_nanos(at)
        bounds = self._bounded(minute)[0 if opens else 1]
        i = int(np.searchsorted(bounds, minute, side="right"))
        if i == len(bounds):
            raise ValueError(f"no {self.exchange} session {'open' if opens else 'close'} after {at.isoformat()} "
                             "within the calendar")
        return _utc_from_nanos(int(bounds[i]))

