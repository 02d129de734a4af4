"""``MarketOpenSensor``: waits for the exchange's regular session (holidays and early closes known), narrowed by
the trading hours and days of the workflow's market config."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator

from include.marketdata.calendar import MarketCalendar

if TYPE_CHECKING:
    from include.config.workflow import MarketConfig


class MarketOpenSensor(BaseSensorOperator):
    """Succeeds while the exchange is open and the time is within ``market_config``'s hours and days.

    ``market_config``: a ``MarketConfig`` or the ``market`` mapping of workflow.yaml (``exchange``,
    ``trading_hours: {start, end, timezone}``, ``trading_days``); None reads workflow.yaml when poked. The
    exchange calendar always applies, so the hours can only narrow the session (e.g. skip the first 30 minutes).
    ``deferrable=True`` hands the wait to the triggerer until the next open (no worker slot, no
    polling); otherwise it pokes in ``reschedule`` mode. ``ignore_market_hours`` (templated, e.g.
    from a DAG param) lets tests and dry runs proceed outside trading hours, and says so in the log.
    """

    template_fields = ("ignore_market_hours",)

    def __init__(
        self,
        *,
        market_config: MarketConfig | Mapping[str, Any] | None = None,
        exchange: str | None = None,
        ignore_market_hours: bool | str = False,
        deferrable: bool = False,
        mode: str = "reschedule",
        poke_interval: float = 60.0,
        timeout: float = timedelta(hours=24).total_seconds(),
        **kwargs: Any,
    ) -> None:
        super().__init__(mode=mode, poke_interval=poke_interval, timeout=timeout, **kwargs)
        if isinstance(market_config, Mapping):
            from include.config.workflow import MarketConfig

            market_config = MarketConfig.model_validate(market_config)  # a bad mapping fails at parse time
        self.market_config = market_config
        self._exchange = exchange
        self.ignore_market_hours = ignore_market_hours
        self.deferrable = deferrable

    @property
    def config(self) -> MarketConfig:
        if self.market_config is None:
            from include.config.workflow import ConfigLoader

            self.market_config = ConfigLoader().get_market_config()
        return self.market_config

    @property
    def exchange(self) -> str:
        return self._exchange or self.config.exchange

    def _ignored(self) -> bool:
        value = self.ignore_market_hours
        return value if isinstance(value, bool) else str(value).strip().lower() in {"1", "true", "yes"}

    def execute(self, context: Any) -> Any:
        if self.deferrable and not self._ignored() and not self.poke(context):
            from airflow.providers.standard.triggers.temporal import DateTimeTrigger

            next_open = next_trading_time(self.config, _now(), self.exchange)
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
        if is_trading_time(self.config, now, self.exchange):
            return True
        self.log.info("%s is closed at %s (or outside the configured hours %s-%s %s, days %s); next open %s",
                      self.exchange, now.isoformat(), self.config.trading_hours.start, self.config.trading_hours.end,
                      self.config.trading_hours.timezone, list(self.config.trading_days),
                      next_trading_time(self.config, now, self.exchange).isoformat())
        return False


def _in_window(config: MarketConfig, at: datetime) -> bool:
    from zoneinfo import ZoneInfo

    hours = config.trading_hours
    local = at.astimezone(ZoneInfo(hours.timezone))
    return local.isoweekday() in config.trading_days and hours.start_time <= local.time() < hours.end_time


def is_trading_time(config: MarketConfig, at: datetime, exchange: str | None = None) -> bool:
    """The exchange is open at ``at`` and ``at`` is within the configured hours and days."""
    return MarketCalendar(exchange or config.exchange).is_open(at) and _in_window(config, at)


def next_trading_time(config: MarketConfig, at: datetime, exchange: str | None = None) -> datetime:
    """The first moment from ``at`` on that ``is_trading_time`` holds (the open, or the configured start)."""
    from zoneinfo import ZoneInfo

    calendar = MarketCalendar(exchange or config.exchange)
    hours = config.trading_hours
    zone = ZoneInfo(hours.timezone)
    moment = at
    for _ in range(400):  # a year of days at most; each step moves to a session open or a local day/hour start
        if not calendar.is_open(moment):
            moment = calendar.next_open(moment)
            continue
        local = moment.astimezone(zone)
        next_day = datetime.combine(local.date() + timedelta(days=1), hours.start_time, zone)
        if local.isoweekday() not in config.trading_days or local.time() >= hours.end_time:
            moment = next_day.astimezone(at.tzinfo)
        elif local.time() < hours.start_time:
            moment = datetime.combine(local.date(), hours.start_time, zone).astimezone(at.tzinfo)
        else:
            return moment
    raise ValueError(f"no trading time within a year of {at.isoformat()} for {config!r}")


def _now() -> datetime:
    """The trading clock (TRADING_CLOCK in simulator tests, else UTC now): the same one risk and submission use."""
    from include.settings import Settings

    return Settings.from_env().now()
