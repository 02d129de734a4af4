"""Pydantic models of ``strategies.yaml``: frozen, ``extra="forbid"``, conservative defaults (dry_run)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from include.risk.limits import RiskLimits
from include.risk.protections import ProtectionsConfig

Mode = Literal["dry_run", "paper", "live"]
SCHEDULE_PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly")
# Assets a strategy DAG may be triggered by (the DAG factory maps the name to its Asset).
TRIGGER_ASSETS = ("fct_latest_features",)
# Moving averages the marts provide, with their periods (a crossover needs fast period < slow period).
MOVING_AVERAGES = {"ema_12": 12, "sma_20": 20, "ema_26": 26, "sma_50": 50, "sma_200": 200}
# Feature columns of analytics_marts.fct_latest_features a strategy may depend on.
FEATURE_COLUMNS = (
    "open", "high", "low", "close", "volume", "return_simple", "return_log", "true_range", "gap_pct",
    "sma_20", "sma_50", "sma_200", "ema_12", "ema_26", "macd", "macd_signal", "macd_hist", "rsi_14",
    "bb_upper", "bb_middle", "bb_lower", "atr_14", "volume_zscore_20", "snapshot_last_price",
)  # fmt: skip
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{2,60}$")
_SYMBOL_RE = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


MovingAverage = Literal["ema_12", "sma_20", "ema_26", "sma_50", "sma_200"]


class SmaCrossoverParams(_Strict):
    """BUY when ``fast`` crosses above ``slow`` between the previous and the latest session, SELL below."""

    model: Literal["sma_crossover"]
    fast: MovingAverage = "sma_20"
    slow: MovingAverage = "sma_50"
    # Gap |fast - slow| (in units of ATR-14) at which confidence reaches 1.0; 0.5 at a zero gap.
    full_confidence_atr: float = Field(0.25, gt=0)

    @model_validator(mode="after")
    def _fast_before_slow(self) -> SmaCrossoverParams:
        if MOVING_AVERAGES[self.fast] >= MOVING_AVERAGES[self.slow]:
            raise ValueError(f"fast ({self.fast}) must have a shorter period than slow ({self.slow})")
        return self


class RsiMeanReversionParams(_Strict):
    """BUY when RSI-14 is below ``oversold``, SELL when above ``overbought``."""

    model: Literal["rsi_mean_reversion"]
    oversold: float = Field(30.0, gt=0, lt=50)
    overbought: float = Field(70.0, gt=50, lt=100)
    # RSI points beyond the threshold at which confidence reaches 1.0; 0.5 right at the threshold.
    full_confidence_distance: float = Field(15.0, gt=0)


class MacdMomentumParams(_Strict):
    """BUY when the MACD histogram turns positive (MACD crosses above its signal line), SELL when negative."""

    model: Literal["macd_momentum"]
    require_zero_line: bool = False  # BUY only above the zero line (macd > 0), SELL only below it
    # |macd_hist| (in units of ATR-14) at which confidence reaches 1.0; 0.5 at zero.
    full_confidence_atr: float = Field(0.1, gt=0)


class LLMParams(_Strict):
    """An OpenAI-compatible chat model; endpoint, model name and key come from an Airflow connection."""

    model: Literal["llm"]
    prompt: str = "signal_v1"
    # The MLflow prompt registry alias that serves ``prompt`` (prompts:/<prompt>@<alias>); set to the repo file's
    # version on first use, moved only by a promotion (include/llm/prompt_registry.py).
    prompt_alias: str = Field("production", pattern=r"^[A-Za-z][A-Za-z0-9_\-]{0,62}$")
    connection_id: str = "llm_default"
    vision: bool = False  # attach the chart PNG as an image part (only for vision-capable models)
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(400, ge=16, le=8192)
    timeout_seconds: float = Field(30.0, gt=0, le=600)
    max_retries: int = Field(2, ge=0, le=5)  # retries on timeouts, 5xx and 429 only
    json_mode: bool = True  # send response_format={"type": "json_object"} (OpenAI, vLLM, Ollama accept it)
    # Without these the LLM is not asked: the signal is HOLD with the missing names.
    required_features: tuple[str, ...] = ("close", "sma_20", "sma_50", "rsi_14", "macd_hist", "atr_14")

    @field_validator("prompt")
    @classmethod
    def _known_prompt(cls, value: str) -> str:
        from include.llm.prompts import available_prompts

        if value not in available_prompts():
            raise ValueError(f"unknown prompt {value!r}; available: {', '.join(available_prompts())}")
        return value

    @field_validator("required_features")
    @classmethod
    def _known_features(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in FEATURE_COLUMNS]
        if unknown:
            raise ValueError(f"unknown feature(s) {unknown}; known: {', '.join(FEATURE_COLUMNS)}")
        return value


class MLParams(_Strict):
    """The registered classifier (``train_signal_model``) behind ``models:/<registered_model>@<alias>``: BUY when
    P(next close higher) >= ``threshold``, SELL when P(lower or equal) >= ``threshold``, else HOLD."""

    model: Literal["ml"]
    registered_model: str = Field("ibkr_signal_direction", pattern=r"^[A-Za-z0-9_.\-]{1,100}$")
    alias: str = Field("champion", pattern=r"^[A-Za-z][A-Za-z0-9_\-]{0,62}$")
    threshold: float = Field(0.55, gt=0.5, le=1.0)  # > 0.5: BUY and SELL can never both hold


SignalParams = Annotated[
    SmaCrossoverParams | RsiMeanReversionParams | MacdMomentumParams | LLMParams | MLParams,
    Field(discriminator="model"),
]
SIGNAL_MODELS = ("sma_crossover", "rsi_mean_reversion", "macd_momentum", "llm", "ml")


def _valid_schedule(value: str) -> str:
    if value in SCHEDULE_PRESETS:
        return value
    if value.startswith("@"):
        raise ValueError(f"unknown schedule preset {value!r}; use one of {', '.join(SCHEDULE_PRESETS)} or a cron")
    from croniter import croniter  # Airflow's own cron parser (an Airflow dependency)

    if len(value.split()) != 5 or not croniter.is_valid(value):
        raise ValueError(f"invalid cron expression {value!r} (expected 5 fields, e.g. '35 20 * * 1-5')")
    return value


class StrategyConfig(_Strict):
    id: StrictInt = Field(ge=1)
    name: str
    description: str = ""
    enabled: bool = True
    symbols: tuple[str, ...] = Field(min_length=1)
    schedule: str | None = None  # cron or preset ...
    asset: Literal["fct_latest_features"] | None = None  # ... or triggered by the features mart
    signal: SignalParams
    risk: RiskLimits = RiskLimits()
    protections: ProtectionsConfig = ProtectionsConfig()  # include/risk/protections/; none = off
    mode: Mode = "dry_run"

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError(f"name {value!r} must be snake_case (a-z, 0-9, _; 3-61 chars): it becomes a DAG id")
        return value

    @field_validator("symbols", mode="before")
    @classmethod
    def _symbols(cls, value: object) -> object:
        if isinstance(value, str):
            value = [s for s in value.split(",") if s.strip()]
        if not isinstance(value, list | tuple):
            return value
        out: list[str] = []
        for item in value:
            symbol = str(item).strip().upper()
            if not _SYMBOL_RE.match(symbol):
                raise ValueError(f"invalid stock symbol {item!r}")
            if symbol in out:
                raise ValueError(f"duplicate symbol {symbol}")
            out.append(symbol)
        return tuple(out)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        return None if value is None else _valid_schedule(value.strip())

    @model_validator(mode="after")
    def _one_trigger(self) -> StrategyConfig:
        if (self.schedule is None) == (self.asset is None):
            raise ValueError("set exactly one of 'schedule' (cron or preset) or 'asset' (fct_latest_features)")
        return self

    @property
    def model(self) -> str:
        return self.signal.model

    @property
    def dag_id(self) -> str:
        """The id the DAG factory gives this strategy's DAG."""
        return f"strategy_{self.name}"
