"""The trigger conf of a trading run (``{"strategy_id": 1, "symbols": [...], "dry_run": true}``), validated."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from include.settings import parse_symbols

Mode = Literal["dry_run", "paper", "live"]


class RunConfError(ValueError):
    """A bad trigger conf: raised by the first task so the run fails before touching anything."""


class RunConf(BaseModel):
    """``dry_run`` defaults to true. With ``dry_run: false`` the run uses ``mode`` (else the strategy's mode);
    ``live`` additionally needs the strategy configured ``live`` and ALLOW_LIVE_TRADING=yes (checked later)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy_id: int = Field(ge=1)
    symbols: tuple[str, ...] | None = None
    dry_run: bool = True
    mode: Mode | None = None
    ignore_market_hours: bool = False

    @field_validator("symbols", mode="before")
    @classmethod
    def _symbols(cls, value: Any) -> Any:
        if value in (None, [], ""):
            return None
        return parse_symbols(value)


def parse_conf(params: dict[str, Any]) -> RunConf:
    """The run's params as a ``RunConf``; unknown keys and wrong types fail with every problem listed."""
    try:
        return RunConf.model_validate({k: v for k, v in params.items() if v is not None or k == "strategy_id"})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'conf'}: {e['msg']}" for e in exc.errors())
        raise RunConfError(f"invalid trading run conf {params!r}: {problems}") from None


def resolve_mode(conf: RunConf, strategy_mode: Mode) -> Mode:
    """dry_run unless the conf says otherwise; a conf can ask for paper, but live only if the strategy is live."""
    if conf.dry_run:
        return "dry_run"
    mode = conf.mode or strategy_mode
    if mode == "live" and strategy_mode != "live":
        raise RunConfError(f"conf asks for live trading but the strategy is configured {strategy_mode!r}: "
                           "live needs the strategy's mode to be live (and ALLOW_LIVE_TRADING=yes)")
    if mode == "dry_run":
        raise RunConfError("dry_run: false needs a mode to trade in: set mode to 'paper' (or configure the "
                           "strategy's mode)")
    if conf.ignore_market_hours:
        raise RunConfError(f"ignore_market_hours is for dry runs only: {mode} orders go out in exchange hours "
                           "(drop it, or set dry_run: true)")
    return mode
