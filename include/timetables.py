"""Exchange-calendar timetables: one run per trading session, or every N minutes while trading.

Holidays and early closes come from ``exchange_calendars`` (via ``MarketCalendar``), not from a
weekday cron. The classes are registered by ``plugins/exchange_calendar_plugin.py`` so the
scheduler can deserialize them; the calendar itself is only loaded when a schedule is computed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pendulum
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable

from include.marketdata.calendar import MarketCalendar


def _dt(value: datetime) -> pendulum.DateTime:
    return pendulum.instance(value.astimezone(UTC))


def _now() -> datetime:
    return datetime.now(UTC)


def _std(value: datetime) -> datetime:
    """Plain stdlib UTC datetime: pendulum's interval arithmetic rejects stdlib timedeltas."""
    return datetime.fromtimestamp(value.timestamp(), UTC)


class ExchangeSessionTimetable(Timetable):
    """One run per exchange session: data interval = [00:00 UTC of the session date, session close].

    The run starts ``delay`` after the close (bars settle after the closing auction). Its logical
    date is the session's calendar date at 00:00 UTC, so ``airflow backfill create --from-date
    2025-01-02 --to-date 2025-01-31`` includes both end sessions, and each run loads its own session.
    """

    def __init__(self, exchange: str = "XNYS", delay: timedelta = timedelta(minutes=30)) -> None:
        self.exchange = exchange
        self.delay = delay
        self.description = f"after each {exchange} session close (+{int(delay.total_seconds() // 60)} min)"

    @property
    def summary(self) -> str:
        return f"{self.exchange} sessions +{int(self.delay.total_seconds() // 60)}m"

    def serialize(self) -> dict[str, Any]:
        return {"exchange": self.exchange, "delay": self.delay.total_seconds()}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Timetable:
        return cls(exchange=data["exchange"], delay=timedelta(seconds=data["delay"]))

    @staticmethod
    def _interval(cal: MarketCalendar, day: date) -> DataInterval:
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return DataInterval(_dt(midnight), _dt(cal.session(day).close))

    def _info(self, cal: MarketCalendar, day: date) -> DagRunInfo:
        interval = self._interval(cal, day)
        return DagRunInfo(run_after=_dt(interval.end + self.delay), data_interval=interval)

    def infer_manual_data_interval(self, *, run_after: datetime) -> DataInterval:
        cal = MarketCalendar(self.exchange)
        return self._interval(cal, cal.last_completed_session(_std(run_after)))

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        cal = MarketCalendar(self.exchange)
        candidates = []
        if last_automated_data_interval is not None:
            candidates.append(cal.next_session(last_automated_data_interval.start.date()))
        elif restriction.earliest is not None:
            earliest = restriction.earliest.astimezone(UTC)
            day = earliest.date()
            if not cal.is_session(day) or self._interval(cal, day).start < earliest:
                day = cal.next_session(day)
            candidates.append(day)
        if not restriction.catchup:
            # Skip missed sessions: start from the latest session that is already due.
            candidates.append(cal.last_completed_session(_now() - self.delay))
        if not candidates:
            candidates.append(cal.last_completed_session(_now() - self.delay))
        info = self._info(cal, max(candidates))
        if restriction.latest is not None and info.data_interval.start > restriction.latest:
            return None
        return info


class ExchangeIntradayTimetable(Timetable):
    """A run every ``every`` minutes while the exchange is open; interval = the preceding slot.

    Slots are aligned on the session open; the last slot ends at the (possibly early) close.
    """

    def __init__(self, exchange: str = "XNYS", every: timedelta = timedelta(minutes=5)) -> None:
        if every <= timedelta(0):
            raise ValueError("every must be positive")
        self.exchange = exchange
        self.every = every
        self.description = f"every {int(every.total_seconds() // 60)} min during {exchange} sessions"

    @property
    def summary(self) -> str:
        return f"{self.exchange} every {int(self.every.total_seconds() // 60)}m in session"

    def serialize(self) -> dict[str, Any]:
        return {"exchange": self.exchange, "every": self.every.total_seconds()}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Timetable:
        return cls(exchange=data["exchange"], every=timedelta(seconds=data["every"]))

    def _next_tick(self, cal: MarketCalendar, after: datetime) -> datetime:
        """The first slot end strictly after ``after``."""
        after = _std(after)
        day = after.astimezone(UTC).date()
        if not cal.is_session(day):
            day = cal.next_session(day)
        for _ in range(10):
            session = cal.session(day)
            if after < session.close:
                if after < session.open:
                    return session.open + self.every
                slots = (after - session.open) // self.every + 1
                return min(session.open + slots * self.every, session.close)
            day = cal.next_session(day)
        raise RuntimeError(f"no {self.exchange} session found after {after.isoformat()}")

    def _prev_tick(self, cal: MarketCalendar, at: datetime) -> datetime:
        """The latest slot end at or before ``at``."""
        at = _std(at)
        day = at.astimezone(UTC).date()
        for _ in range(15):
            if cal.is_session(day):
                session = cal.session(day)
                if at >= session.open + self.every:
                    if at >= session.close:
                        return session.close
                    slots = (at - session.open) // self.every
                    return session.open + slots * self.every
            day -= timedelta(days=1)
        raise RuntimeError(f"no {self.exchange} session found before {at.isoformat()}")

    def _slot(self, cal: MarketCalendar, end: datetime) -> DataInterval:
        end = _std(end)
        session = cal.session(end.astimezone(UTC).date())
        start = max(session.open, end - self.every)
        if end == session.close:
            start = (
                session.open + ((end - session.open - timedelta(microseconds=1)) // self.every) * self.every
            )
        return DataInterval(_dt(start), _dt(end))

    def infer_manual_data_interval(self, *, run_after: datetime) -> DataInterval:
        cal = MarketCalendar(self.exchange)
        return self._slot(cal, self._prev_tick(cal, run_after))

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        cal = MarketCalendar(self.exchange)
        candidates = []
        if last_automated_data_interval is not None:
            candidates.append(self._next_tick(cal, last_automated_data_interval.end))
        elif restriction.earliest is not None:
            candidates.append(self._next_tick(cal, restriction.earliest - timedelta(microseconds=1)))
        if not restriction.catchup or not candidates:
            now = _now()
            candidates.append(self._next_tick(cal, now - self.every))
        end = max(candidates)
        if restriction.latest is not None and end > restriction.latest:
            return None
        interval = self._slot(cal, end)
        return DagRunInfo(run_after=_dt(end), data_interval=interval)
