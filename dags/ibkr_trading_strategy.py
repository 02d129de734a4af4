"""Run any configured strategy on demand: signals -> risk -> orders, tracked in MLflow.

Trigger with a conf, e.g. ``airflow dags trigger ibkr_trading_strategy --conf '{"strategy_id": 1,
"symbols": ["TSLA", "NVDA"], "dry_run": true}'`` (or the REST API / the UI's trigger form). Dry run is the
default; ``"dry_run": false, "mode": "paper"`` trades a paper (DU...) account; live needs the strategy's
mode ``live`` and ALLOW_LIVE_TRADING=yes. Strategies: include/config/strategies.yaml.
"""

from include.trading.workflow import build_trading_dag, trading_params

# airflow DAG file: ibkr_trading_strategy (parameterised; no schedule)
dag = build_trading_dag("ibkr_trading_strategy", schedule=None, params=trading_params(), doc_md=__doc__)
# Manual only: unpaused when first created, so a trigger (UI, CLI, REST) starts a run without unpausing it first.
dag.is_paused_upon_creation = False
