"""YAML configuration: the strategies (``strategies.yaml``) and the workflow settings (``workflow.yaml``), validated."""

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
from include.config.workflow import (
    ConfigLoader,
    WorkflowConfig,
    load_workflow,
    strategy_experiment,
    strategy_experiments,
)

__all__ = [
    "SIGNAL_MODELS",
    "STRATEGIES_YAML",
    "ConfigError",
    "ConfigLoader",
    "StrategyConfig",
    "UnknownStrategyError",
    "WorkflowConfig",
    "enabled_strategies",
    "get_strategy",
    "load_strategies",
    "load_workflow",
    "parse_strategies",
    "strategy_experiment",
    "strategy_experiments",
]
