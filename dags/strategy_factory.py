"""One scheduled trading DAG per enabled strategy in include/config/strategies.yaml (``strategy_<name>``).

A strategy runs on its cron schedule, or whenever the ``fct_latest_features`` mart is refreshed. Its
configured mode applies (dry_run unless configured otherwise); the shape is ibkr_trading_strategy's.
"""

from include.assets import FCT_LATEST_FEATURES
from include.config import enabled_strategies
from include.trading.workflow import build_trading_dag, trading_params

# airflow DAG factory: reads a small YAML file at parse time (validated; no database or network)
for _strategy in enabled_strategies():
    globals()[_strategy.dag_id] = build_trading_dag(
        _strategy.dag_id,
        schedule=[FCT_LATEST_FEATURES] if _strategy.asset else _strategy.schedule,
        params=trading_params(_strategy.id, dry_run=_strategy.mode == "dry_run"),
        doc_md=f"**{_strategy.name}** ({_strategy.signal.model}): {_strategy.description}\n\n{__doc__}",
    )
