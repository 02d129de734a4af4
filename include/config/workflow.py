"""``ConfigLoader``: the workflow settings of ``workflow.yaml`` (gateway, MLflow, market hours, DAG defaults),
validated; environment variables and Airflow connections win where they are set (``include.settings``)."""

from __future__ import annotations

import functools
import os
import re
from datetime import time, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

WORKFLOW_YAML = Path(__file__).with_name("workflow.yaml")
WORKFLOW_FILE_ENV = "WORKFLOW_FILE"  # another workflow YAML than include/config/workflow.yaml
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BackendConfig(_Strict):
    """The IBKR gateway the hook talks to (``gateway_url`` None: not configured anywhere)."""

    gateway_url: str | None = None
    timeout: float = Field(15.0, gt=0, le=300)
    retry_attempts: int = Field(4, ge=0, le=10)
    verify_ssl: bool = False  # IBKR_VERIFY_SSL or the connection's extra; not a YAML key

    @field_validator("gateway_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"gateway_url {value!r} must start with http:// or https://")
        return value


class MLflowConfig(_Strict):
    tracking_uri: str | None = None
    experiment_name: str = "ibkr-strategy-{strategy}"

    def experiment(self, strategy: str | None = None) -> str:
        """The experiment of a strategy's runs (``{strategy}`` filled in)."""
        if "{strategy}" in self.experiment_name and not strategy:
            raise ValueError(f"experiment_name {self.experiment_name!r} needs a strategy name")
        return self.experiment_name.replace("{strategy}", strategy or "")


class TradingHours(_Strict):
    start: str = "09:30"
    end: str = "16:00"
    timezone: str = "America/New_York"

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError(f"{value!r} is not a time like 09:30")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _ordered(self) -> TradingHours:
        if self.start_time >= self.end_time:
            raise ValueError(f"start {self.start} must be before end {self.end}")
        return self

    @property
    def start_time(self) -> time:
        return time.fromisoformat(self.start)

    @property
    def end_time(self) -> time:
        return time.fromisoformat(self.end)


class MarketConfig(_Strict):
    """When the workflow trades: the exchange calendar (holidays, early closes), narrowed by hours and days."""

    exchange: str = "XNYS"
    trading_hours: TradingHours = TradingHours()
    trading_days: tuple[int, ...] = Field((1, 2, 3, 4, 5), min_length=1)  # ISO weekdays, 1 = Monday

    @field_validator("trading_days")
    @classmethod
    def _weekdays(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(day not in range(1, 8) for day in value):
            raise ValueError(f"trading_days must be ISO weekdays 1 (Monday) to 7 (Sunday), got {list(value)}")
        return tuple(sorted(set(value)))


class DefaultsConfig(_Strict):
    owner: str = "trading"
    retries: int = Field(2, ge=0, le=10)
    retry_delay: float = Field(30.0, ge=0)  # seconds

    def default_args(self) -> dict[str, Any]:
        return {"owner": self.owner, "retries": self.retries, "retry_delay": timedelta(seconds=self.retry_delay)}


class WorkflowConfig(_Strict):
    version: int = 1
    backend: BackendConfig = BackendConfig()
    mlflow: MLflowConfig = MLflowConfig()
    market: MarketConfig = MarketConfig()
    defaults: DefaultsConfig = DefaultsConfig()

    @field_validator("version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != 1:
            raise ValueError(f"unsupported version {value!r} (expected 1)")
        return value


def workflow_file() -> Path:
    return Path(os.environ.get(WORKFLOW_FILE_ENV) or WORKFLOW_YAML)


def strategy_experiment(strategy: str) -> str:
    """The MLflow experiment of a strategy's runs: ``mlflow.experiment_name`` of workflow.yaml with ``{strategy}``
    filled in (default ``ibkr-strategy-<name>``). The trading DAG, its LLM traces and ``MLflowTracker`` log there."""
    return load_workflow().mlflow.experiment(strategy)


def strategy_experiments() -> set[str]:
    """The experiments of every configured strategy (strategies.yaml), by ``strategy_experiment``."""
    from include.config.loader import load_strategies

    return {strategy_experiment(s.name) for s in load_strategies()}


def load_workflow(path: str | Path | None = None) -> WorkflowConfig:
    """The YAML as it is (no environment applied); cached per file and modification time."""
    from include.config.loader import ConfigError

    file = Path(path) if path else workflow_file()
    try:
        mtime = file.stat().st_mtime_ns
    except FileNotFoundError:
        raise ConfigError(f"workflow file not found: {file}") from None
    return _load(str(file), mtime)


@functools.lru_cache(maxsize=4)
def _load(file: str, _mtime: int) -> WorkflowConfig:
    import yaml

    from include.config.loader import ConfigError, safe_loader

    name = Path(file).name
    try:
        document = yaml.load(Path(file).read_text(encoding="utf-8"), Loader=safe_loader()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: invalid YAML: {exc}") from None
    try:
        return WorkflowConfig.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg'].removeprefix('Value error, ')}"
                             for e in exc.errors(include_url=False))
        raise ConfigError(f"{name}: {problems}") from None


class ConfigLoader:
    """The guide's ``ConfigLoader``: ``get_backend_config`` / ``get_mlflow_config`` / ``get_market_config``.

    Backend and MLflow endpoints resolve like everywhere in the project (``include.settings``): environment
    variable, else Airflow connection, else this YAML; market hours and DAG defaults come from the YAML.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None

    @property
    def config(self) -> WorkflowConfig:
        return load_workflow(self.path)

    def get_backend_config(self) -> BackendConfig:
        from include.settings import load_settings

        settings = load_settings(workflow=self.config)
        return self.config.backend.model_copy(update={"gateway_url": settings.ibkr_gateway_url,
                                                      "verify_ssl": settings.ibkr_verify_ssl})

    def get_mlflow_config(self) -> MLflowConfig:
        from include.settings import SettingsError, mlflow_tracking_uri

        try:
            uri: str | None = mlflow_tracking_uri(workflow=self.config)
        except SettingsError:
            uri = None
        return self.config.mlflow.model_copy(update={"tracking_uri": uri})

    def get_market_config(self) -> MarketConfig:
        return self.config.market

    def get_default_args(self) -> dict[str, Any]:
        """``default_args`` of the trading DAGs (owner, retries, retry_delay)."""
        return self.config.defaults.default_args()
