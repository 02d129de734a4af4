"""Exchange-calendar timetables: one run per trading session, or every N minutes while trading.

Where holidays come from and how the scheduler finds the classes: docs/scheduling.md.
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


_MAX_MARGIN = timedelta(hours=2)


def _minutes(value: timedelta) -> int:
    return int(value.total_seconds() // 60)


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
    ``pre_open`` / ``post_close`` widen each session's window (e.g. a gateway keepalive that must
    already run before the open); slots are then aligned on ``open - pre_open``.
    """

    def __init__(
        self, exchange: str = "XNYS", every: timedelta = timedelta(minutes=5), *,
        pre_open: timedelta = timedelta(0), post_close: timedelta = timedelta(0),
    ) -> None:  # fmt: skip
        if every <= timedelta(0):
            raise ValueError("every must be positive")
        if not (timedelta(0) <= pre_open <= _MAX_MARGIN and timedelta(0) <= post_close <= _MAX_MARGIN):
            # Slots are looked up by their UTC date: a wider margin could cross midnight.
            raise ValueError(f"pre_open and post_close must be between 0 and {_MAX_MARGIN}")
        self.exchange = exchange
        self.every = every
        self.pre_open, self.post_close = pre_open, post_close
        margins = ""
        if pre_open or post_close:
            margins = f" (from {_minutes(pre_open)} min before the open to {_minutes(post_close)} min after the close)"
        self.description = f"every {_minutes(every)} min during {exchange} sessions{margins}"

    @property
    def summary(self) -> str:
        return f"{self.exchange} every {_minutes(self.every)}m in session"

    def serialize(self) -> dict[str, Any]:
        data: dict[str, Any] = {"exchange": self.exchange, "every": self.every.total_seconds()}
        if self.pre_open or self.post_close:  # only when set: existing serialized DAGs stay unchanged
            data.update(pre_open=self.pre_open.total_seconds(), post_close=self.post_close.total_seconds())
        return data

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Timetable:
        return cls(
            exchange=data["exchange"], every=timedelta(seconds=data["every"]),
            pre_open=timedelta(seconds=data.get("pre_open", 0)),
            post_close=timedelta(seconds=data.get("post_close", 0)),
        )  # fmt: skip

    def _window(self, cal: MarketCalendar, day: date) -> tuple[datetime, datetime]:
        """The session's scheduling window: [open - pre_open, close + post_close]."""
        session = cal.session(day)
        return session.open - self.pre_open, session.close + self.post_close

    def _next_tick(self, cal: MarketCalendar, after: datetime) -> datetime:
        """The first slot end strictly after ``after``."""
        after = _std(after)
        day = after.astimezone(UTC).date()
        if not cal.is_session(day):
            day = cal.next_session(day)
        for _ in range(10):
            opens, closes = self._window(cal, day)
            if after < closes:
                if after < opens:
                    return opens + self.every
                slots = (after - opens) // self.every + 1
                return min(opens + slots * self.every, closes)
            day = cal.next_session(day)
        raise RuntimeError(f"no {self.exchange} session found after {after.isoformat()}")

    def _prev_tick(self, cal: MarketCalendar, at: datetime) -> datetime:
        """The latest slot end at or before ``at``."""
        at = _std(at)
        day = at.astimezone(UTC).date()
        for _ in range(15):
            if cal.is_session(day):
                opens, closes = self._window(cal, day)
                if at >= opens + self.every:
                    if at >= closes:
                        return closes
                    slots = (at - opens) // self.every
                    return opens + slots * self.every
            day -= timedelta(days=1)
        raise RuntimeError(f"no {self.exchange} session found before {at.isoformat()}")

    def _slot(self, cal: MarketCalendar, end: datetime) -> DataInterval:
        end = _std(end)
        opens, closes = self._window(cal, end.astimezone(UTC).date())
        start = max(opens, end - self.every)
        if end == closes:
            start = opens + ((end - opens - timedelta(microseconds=1)) // self.every) * self.every
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
