"""YAML configuration that drives the strategy DAGs (``strategies.yaml``) and its validated models."""

from include.config.loader import (
    STRATEGIES_YAML,
    ConfigError,
    UnknownStrategyError,
    enabled_strategies,
    get_strategy,
    load_strategies,
    parse_strategies,
)
from include.config.models import SIGNAL_MODELS, StrategyConfig

__all__ = [
    "SIGNAL_MODELS",
    "STRATEGIES_YAML",
    "ConfigError",
    "StrategyConfig",
    "UnknownStrategyError",
    "enabled_strategies",
    "get_strategy",
    "load_strategies",
    "parse_strategies",
]
