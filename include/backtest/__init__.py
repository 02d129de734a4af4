"""Backtests of the configured strategies on the dbt mart history (``engine``), their metrics, charts and the
``strategy_backtest`` DAG's task bodies (``tasks``)."""
