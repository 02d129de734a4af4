"""What the trading tasks hand each other, typed: the run (``TradingRun``, serialised once by the first task) and
each step's output. Each model carries the run, so a task takes only the outputs it really uses."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from include.tracking import RunLogger

Mode = Literal["dry_run", "paper", "live"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TradingRun(_Frozen):
    """One DAG run of a strategy: who, what, in which mode, and for which exchange sessions."""

    dag_id: str
    run_id: str
    strategy_id: int
    strategy: str
    mode: Mode
    symbols: tuple[str, ...]
    mlflow_run_id: str
    mlflow_artifact_uri: str | None = None  # the run's, as start_mlflow_run saw it: no look-up before an upload
    ignore_market_hours: bool = False
    started_at: datetime
    session: date  # the exchange session this run's decisions are for (one decision per strategy/symbol/session)
    data_session: date  # the latest completed session: features and verdicts must be for it (within tolerance)

    @property
    def label(self) -> str:
        return f"{self.dag_id}/{self.run_id}"

    def mlflow_logger(self) -> RunLogger:
        """The run's MLflow logger, in any task process (it uploads without asking for the run's artifact URI)."""
        from include.tracking import RunLogger

        return RunLogger(self.mlflow_run_id, artifact_uri=self.mlflow_artifact_uri)


class Quote(_Frozen):
    last: float | None = None
    bid: float | None = None
    ask: float | None = None
    captured_at: datetime | None = None  # when we received it
    quote_at: datetime | None = None  # IBKR's own timestamp (_updated); None: the snapshot carried none


class MarketView(_Frozen):
    """The account as the broker sees it right before risk: positions, orders still working, quotes."""

    run: TradingRun
    account: str | None  # masked (DU…567): enough to tell paper from live
    positions: dict[str, float]  # symbol -> shares
    working: dict[str, dict[str, float]]  # symbol -> {"buy": shares, "sell": shares} in orders that may still trade
    quotes: dict[str, Quote]
    net_liquidation: float | None = None
    gross_position_value: float | None = None
    fetch_duration_seconds: float = 0.0


class FeatureSet(_Frozen):
    """The strategy inputs per symbol (latest mart row and the one before), each symbol's data-quality verdict
    for the run's data session, and the symbols that cannot trade on data: missing (no row) or bad (named)."""

    run: TradingRun
    latest: dict[str, dict[str, Any]]
    previous: dict[str, dict[str, Any]]
    verdicts: dict[str, dict[str, Any]]
    missing: tuple[str, ...] = ()
    bad: dict[str, str] = Field(default_factory=dict)  # symbol -> why its data cannot be traded on
    data_points: int = 0


class SignalSet(_Frozen):
    run: TradingRun
    signals: tuple[dict[str, Any], ...]  # include.strategies.base.Signal dicts (one per symbol)


class RiskOutcome(_Frozen):
    run: TradingRun
    decisions: tuple[dict[str, Any], ...]  # include.risk.models.RiskDecision dicts
    signals: dict[str, dict[str, Any]]  # symbol -> signal (stored with the intent)
    verdicts: dict[str, dict[str, Any]]  # symbol -> data-quality verdict (stored with the intent)
    missing: tuple[str, ...] = ()

    @property
    def approved(self) -> list[dict[str, Any]]:
        return [d for d in self.decisions if d.get("approved")]


class OrderOutcome(_Frozen):
    run: TradingRun
    counts: dict[str, int]
    intents: tuple[dict[str, Any], ...]
    order_quantity: float = 0.0
    order_value: float = 0.0


def finite_row(row: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The row JSON-safe (dates as ISO text, NaN/inf as None) and the names of the non-finite numbers."""
    out: dict[str, Any] = {}
    bad: list[str] = []
    for key, value in row.items():
        if isinstance(value, float) and not math.isfinite(value):
            bad.append(key)
            value = None
        elif isinstance(value, date):
            value = value.isoformat()
        out[key] = value
    return out, bad
