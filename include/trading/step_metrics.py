"""The guide's MLflow metrics of a trading step that failed: the task bodies log them when they succeed; this logs
the ones a failed step left out (fetch time so far, nothing fetched or decided, what the ledger holds)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from include.trading.context import TradingRun

log = logging.getLogger(__name__)
# step (task body in include/trading/tasks.py) -> the guide's metrics it logs on success
GUIDE_METRICS = {
    "fetch_market_data": ("symbols_count", "fetch_duration_seconds"),
    "read_features": ("data_points",),
    "generate_signals": ("signal_confidence",),
    "place_orders": ("order_quantity", "order_value"),
}


@contextmanager
def guide_metrics(step: str, run: TradingRun, *, enabled: bool = True) -> Iterator[None]:
    """Run a step; if it raises, log its guide metrics that are still missing from the run, then re-raise."""
    if step not in GUIDE_METRICS:
        raise ValueError(f"unknown trading step {step!r}; known: {', '.join(GUIDE_METRICS)}")
    started = time.perf_counter()
    try:
        yield
    except Exception:
        if enabled:
            try:
                log_failed_step(step, run, time.perf_counter() - started)
            except Exception:  # the step's own error is what matters
                log.exception("could not log the guide metrics of failed step %s", step)
        raise


def failed_step_values(step: str, run: TradingRun, elapsed_s: float) -> dict[str, float]:
    if step == "fetch_market_data":
        return {"symbols_count": len(run.symbols), "fetch_duration_seconds": elapsed_s}
    if step == "read_features":
        return {"data_points": 0}
    if step == "generate_signals":
        return {"signal_confidence": 0.0}
    return _ledger_orders(run)


def log_failed_step(step: str, run: TradingRun, elapsed_s: float) -> dict[str, float]:
    """Log the values of ``failed_step_values`` that the run does not have yet; returns what was logged."""
    logger = run.mlflow_logger()
    logged = logger.logged_metrics()
    missing = {k: v for k, v in failed_step_values(step, run, elapsed_s).items() if k not in logged}
    if missing:
        logger.log_metrics(missing)
    return missing


def _ledger_orders(run: TradingRun) -> dict[str, Any]:
    """Shares and dollars this run recorded in the ledger before it failed (as ``place_orders`` counts them)."""
    from include.execution.ledger import connect, session_decisions
    from include.settings import load_settings

    conn = connect(load_settings().require_market_db_url())
    try:
        mine = [i for i in session_decisions(conn, run.strategy_id, run.session, run.mode)
                if (i.dag_id, i.run_id) == (run.dag_id, run.run_id)]
    finally:
        conn.close()
    return {"order_quantity": sum(float(i.quantity) for i in mine),
            "order_value": sum(float(i.quantity) * (i.limit_price or 0) for i in mine)}
