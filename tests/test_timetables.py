from datetime import timedelta

import pendulum
from airflow.timetables.base import TimeRestriction

from include.timetables import ExchangeIntradayTimetable, ExchangeSessionTimetable


def _runs(tt, start, end):
    r = TimeRestriction(earliest=start, latest=end, catchup=True)
    last, out = None, []
    while (info := tt.next_dagrun_info(last_automated_data_interval=last, restriction=r)) is not None:
        out.append(info)
        last = info.data_interval
    return out


def test_session_timetable_follows_the_exchange_calendar():
    runs = _runs(
        ExchangeSessionTimetable(delay=timedelta(minutes=30)),
        pendulum.datetime(2024, 7, 1, tz="UTC"),
        pendulum.datetime(2024, 7, 8, 23, tz="UTC"),
    )
    days = [r.data_interval.start.date().isoformat() for r in runs]
    assert days == ["2024-07-01", "2024-07-02", "2024-07-03", "2024-07-05", "2024-07-08"]  # no July 4th
    early = runs[2]
    assert early.data_interval.end == pendulum.datetime(2024, 7, 3, 17, tz="UTC")  # 13:00 ET early close
    assert early.run_after == pendulum.datetime(2024, 7, 3, 17, 30, tz="UTC")


def test_session_timetable_manual_run_targets_last_completed_session():
    tt = ExchangeSessionTimetable()
    interval = tt.infer_manual_data_interval(run_after=pendulum.datetime(2024, 7, 5, 15, tz="UTC"))
    assert interval.start.date().isoformat() == "2024-07-03"


def test_session_timetable_round_trips_serialization():
    tt = ExchangeSessionTimetable("XNYS", delay=timedelta(minutes=45))
    back = ExchangeSessionTimetable.deserialize(tt.serialize())
    assert back.serialize() == tt.serialize() and back.summary == tt.summary


def test_intraday_timetable_runs_only_while_open_and_stops_at_early_close():
    runs = _runs(
        ExchangeIntradayTimetable(every=timedelta(minutes=5)),
        pendulum.datetime(2024, 11, 29, 17, 40, tz="UTC"),
        pendulum.datetime(2024, 12, 2, 14, 45, tz="UTC"),
    )
    ends = [r.run_after.isoformat() for r in runs]
    assert ends[:5] == [f"2024-11-29T17:{m}:00+00:00" for m in ("40", "45", "50", "55")] + ["2024-11-29T18:00:00+00:00"]
    assert ends[5:] == ["2024-12-02T14:35:00+00:00", "2024-12-02T14:40:00+00:00", "2024-12-02T14:45:00+00:00"]
    assert all(r.data_interval.end - r.data_interval.start == timedelta(minutes=5) for r in runs)


def test_intraday_without_catchup_never_schedules_in_the_past():
    tt = ExchangeIntradayTimetable()
    r = TimeRestriction(earliest=pendulum.datetime(2020, 1, 1, tz="UTC"), latest=None, catchup=False)
    info = tt.next_dagrun_info(last_automated_data_interval=None, restriction=r)
    assert info.run_after >= pendulum.now("UTC") - timedelta(minutes=5)


def test_backfill_date_window_includes_both_end_sessions():
    # `airflow backfill create --from-date 2025-07-01 --to-date 2025-07-08` passes midnights.
    runs = _runs(
        ExchangeSessionTimetable(), pendulum.datetime(2025, 7, 1, tz="UTC"), pendulum.datetime(2025, 7, 8, tz="UTC")
    )
    assert [r.logical_date.date().isoformat() for r in runs] == [
        "2025-07-01",
        "2025-07-02",
        "2025-07-03",
        "2025-07-07",
        "2025-07-08",
    ]
    assert all(r.data_interval.end.date() == r.data_interval.start.date() for r in runs)
