"""``MarketOpenSensor``: waits for the exchange's regular session (holidays and early closes known)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator

from include.marketdata.calendar import MarketCalendar


class MarketOpenSensor(BaseSensorOperator):
    """Succeeds while the exchange is open.

    ``deferrable=True`` hands the wait to the triggerer until the next open (no worker slot, no
    polling); otherwise it pokes in ``reschedule`` mode. ``ignore_market_hours`` (templated, e.g.
    from a DAG param) lets tests and dry runs proceed outside trading hours, and says so in the log.
    """

    template_fields = ("ignore_market_hours",)

    def __init__(
        self,
        *,
        exchange: str = "XNYS",
        ignore_market_hours: bool | str = False,
        deferrable: bool = False,
        mode: str = "reschedule",
        poke_interval: float = 60.0,
        timeout: float = timedelta(hours=24).total_seconds(),
        **kwargs: Any,
    ) -> None:
        super().__init__(mode=mode, poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.exchange = exchange
        self.ignore_market_hours = ignore_market_hours
        self.deferrable = deferrable

    def _ignored(self) -> bool:
        value = self.ignore_market_hours
        return value if isinstance(value, bool) else str(value).strip().lower() in {"1", "true", "yes"}

    def execute(self, context: Any) -> Any:
        if self.deferrable and not self._ignored() and not self.poke(context):
            from airflow.providers.standard.triggers.temporal import DateTimeTrigger

            next_open = MarketCalendar(self.exchange).next_open(_now())
            self.log.info("%s closed; deferring until the next open at %s", self.exchange, next_open)
            self.defer(trigger=DateTimeTrigger(moment=next_open), method_name="execute_complete")
        return super().execute(context)

    def execute_complete(self, context: Any, event: Any = None) -> None:
        self.log.info("%s session open", self.exchange)

    def poke(self, context: Any) -> bool:
        if self._ignored():
            self.log.warning("market hours ignored (ignore_market_hours=%r)", self.ignore_market_hours)
            return True
        now = _now()
        calendar = MarketCalendar(self.exchange)
        if calendar.is_open(now):
            return True
        self.log.info("%s is closed at %s; next open %s", self.exchange, now.isoformat(),
                      calendar.next_open(now).isoformat())
        return False


def _now() -> datetime:
    """The trading clock (TRADING_CLOCK in simulator tests, else UTC now): the same one risk and submission use."""
    from include.settings import Settings

    return Settings.from_env().now()
