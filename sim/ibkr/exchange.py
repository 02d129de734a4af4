"""XNYS session table (dates, opens, closes as epoch ms) built once per process from exchange_calendars."""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

NEW_YORK = ZoneInfo("America/New_York")
_CAL_START = date(2000, 1, 3)
# A fixed end keeps the table (and so every generated price path) identical across processes and years.
_CAL_END = date(2035, 12, 31)
_lock = threading.Lock()
_tables: dict[date, SessionTable] = {}


@dataclass(frozen=True)
class SessionTable:
    ordinals: np.ndarray  # int64 date ordinals, ascending
    open_ms: np.ndarray  # int64 epoch ms
    close_ms: np.ndarray  # int64 epoch ms
    day_ms: np.ndarray  # int64 epoch ms of the date at 00:00 UTC
    index: dict[int, int]  # ordinal -> position

    def __len__(self) -> int:
        return len(self.ordinals)

    def date_at(self, i: int) -> date:
        return date.fromordinal(int(self.ordinals[i]))

    def position(self, day: date) -> int | None:
        return self.index.get(day.toordinal())

    def first_on_or_after(self, day: date) -> int:
        return int(np.searchsorted(self.ordinals, day.toordinal(), side="left"))

    def last_closed(self, now_ms: int) -> int:
        """Index of the last session with close <= now, or -1."""
        return int(np.searchsorted(self.close_ms, now_ms, side="right")) - 1

    def current(self, now_ms: int) -> int | None:
        """Index of the session in progress (open <= now < close), if any."""
        i = int(np.searchsorted(self.open_ms, now_ms, side="right")) - 1
        if i >= 0 and now_ms < self.close_ms[i]:
            return i
        return None

    def next_open(self, now_ms: int) -> int | None:
        i = int(np.searchsorted(self.open_ms, now_ms, side="right"))
        return i if i < len(self.ordinals) else None

    def is_open(self, now_ms: int) -> bool:
        return self.current(now_ms) is not None


def _epoch_ms(series: object) -> np.ndarray:
    naive = series.dt.tz_convert("UTC").dt.tz_localize(None)  # type: ignore[attr-defined]
    return naive.to_numpy().astype("datetime64[ms]").astype(np.int64)


def _build(start: date) -> SessionTable:
    import exchange_calendars as xcals  # imports pandas: ~1 s, so only on first use

    with warnings.catch_warnings():  # exchange_calendars trips pandas 3 deprecation warnings
        warnings.simplefilter("ignore")
        cal = xcals.get_calendar("XNYS", start=start.isoformat(), end=_CAL_END.isoformat())
        ordinals = np.array([ts.date().toordinal() for ts in cal.sessions], dtype=np.int64)
        opens = _epoch_ms(cal.opens)
        closes = _epoch_ms(cal.closes)
    day = (ordinals - 719163) * 86_400_000
    return SessionTable(ordinals, opens, closes, day, {int(o): i for i, o in enumerate(ordinals)})


def session_table(start: date = _CAL_START) -> SessionTable:
    """The XNYS table from min(start, 2000-01-03); built once per process (thread-safe)."""
    key = min(start, _CAL_START)
    table = _tables.get(key)
    if table is None:
        with _lock:
            table = _tables.get(key)
            if table is None:
                table = _tables[key] = _build(key)
    return table


def warm_up(start: date = _CAL_START) -> None:
    """Build the table in a background thread so a server starts in well under a second."""
    if min(start, _CAL_START) in _tables:
        return
    threading.Thread(target=session_table, args=(start,), name="xnys-warm-up", daemon=True).start()


def fallback_close_ms(day: date) -> int:
    """Close time for bar dates that are not XNYS sessions (CSV replay, admin overrides): 16:00 New York."""
    return int(datetime.combine(day, time(16), tzinfo=NEW_YORK).timestamp() * 1000)


def last_nightly_reset(now: datetime) -> datetime:
    """Most recent 01:00 America/New_York at or before `now` (§1, §9 nightly /iserver reset)."""
    local = now.astimezone(NEW_YORK)
    reset = datetime.combine(local.date(), time(1), tzinfo=NEW_YORK)
    if reset > local:
        reset = datetime.combine(local.date() - timedelta(days=1), time(1), tzinfo=NEW_YORK)
    return reset.astimezone(UTC)
