"""The keepalive's schedule: a run every minute of the XNYS trading day plus its margins, on the real calendar."""

from collections import Counter
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pendulum
from airflow.timetables.base import TimeRestriction

from include.timetables import ExchangeIntradayTimetable


def _keepalive_timetable():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(Path(__file__).parents[2] / "dags" / "ibkr_gateway_keepalive.py"))
    return bag.dags["ibkr_gateway_keepalive"].timetable


def _runs(tt, start, end):
    restriction = TimeRestriction(earliest=start, latest=end, catchup=True)
    last, out = None, []
    while (info := tt.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)) is not None:
        out.append(info)
        last = info.data_interval
    return out


def test_one_minute_runs_only_in_the_trading_day_with_margins_early_close_and_holiday():
    tt = _keepalive_timetable()
    assert isinstance(tt, ExchangeIntradayTimetable)
    # Wed 2024-07-03 closes early (13:00 ET = 17:00 UTC), Thu 07-04 is a holiday, Fri 07-05 a full session.
    runs = _runs(tt, pendulum.datetime(2024, 7, 3, tz="UTC"), pendulum.datetime(2024, 7, 6, tz="UTC"))
    ends = [r.run_after for r in runs]
    per_day = Counter(e.date().isoformat() for e in ends)
    assert per_day == {"2024-07-03": 255, "2024-07-05": 435}  # 13:00-17:15 and 13:00-20:15 UTC, one a minute
    assert ends[0] == pendulum.datetime(2024, 7, 3, 13, 1, tz="UTC")  # open 13:30 UTC minus 30 min, first slot end
    assert max(e for e in ends if e.day == 3) == pendulum.datetime(2024, 7, 3, 17, 15, tz="UTC")
    assert ends[-1] == pendulum.datetime(2024, 7, 5, 20, 15, tz="UTC")
    assert all(b - a == timedelta(minutes=1) for a, b in pairwise(ends) if a.date() == b.date())
    assert all(r.data_interval.end - r.data_interval.start == timedelta(minutes=1) for r in runs)


def test_margins_round_trip_and_plain_timetables_serialize_as_before():
    tt = ExchangeIntradayTimetable(
        every=timedelta(minutes=1), pre_open=timedelta(minutes=30), post_close=timedelta(minutes=15)
    )
    back = ExchangeIntradayTimetable.deserialize(tt.serialize())
    assert (back.pre_open, back.post_close, back.every) == (tt.pre_open, tt.post_close, tt.every)
    assert "30 min before the open" in tt.description
    assert ExchangeIntradayTimetable().serialize() == {"exchange": "XNYS", "every": 300.0}
    assert ExchangeIntradayTimetable.deserialize({"exchange": "XNYS", "every": 300.0}).pre_open == timedelta(0)


def test_manual_run_outside_the_window_targets_the_last_slot():
    tt = ExchangeIntradayTimetable(
        every=timedelta(minutes=1), pre_open=timedelta(minutes=30), post_close=timedelta(minutes=15)
    )
    interval = tt.infer_manual_data_interval(run_after=pendulum.datetime(2024, 7, 4, 15, tz="UTC"))  # holiday
    assert interval.end == pendulum.datetime(2024, 7, 3, 17, 15, tz="UTC")
    assert interval.start == pendulum.datetime(2024, 7, 3, 17, 14, tz="UTC")
