"""Registers the exchange-calendar timetables so the scheduler can deserialize DAGs that use them."""

from airflow.plugins_manager import AirflowPlugin

from include.timetables import ExchangeIntradayTimetable, ExchangeSessionTimetable


class ExchangeCalendarPlugin(AirflowPlugin):
    name = "exchange_calendar"
    timetables = [ExchangeSessionTimetable, ExchangeIntradayTimetable]
