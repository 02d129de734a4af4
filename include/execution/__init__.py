"""Order execution: the order-intent ledger (Postgres ``trading`` schema), idempotent submission with the
intent id as IBKR cOID, reconciliation against the broker, and status/fill refresh. No Airflow imports."""

from include.execution.errors import (
    ConcurrentExecutionError,
    ExecutionError,
    IntentConflictError,
    IntentFailure,
    OrderExecutionError,
)
from include.execution.executor import ExecutionReport, check_live_allowed, execute_intents
from include.execution.ledger import ensure_schema, load_events, load_intents
from include.execution.models import IntentRecord, OrderPlan, RunContext, make_intent_id
from include.execution.refresh import refresh_intents

__all__ = [
    "ConcurrentExecutionError",
    "ExecutionError",
    "ExecutionReport",
    "IntentConflictError",
    "IntentFailure",
    "IntentRecord",
    "OrderExecutionError",
    "OrderPlan",
    "RunContext",
    "check_live_allowed",
    "ensure_schema",
    "execute_intents",
    "load_events",
    "load_intents",
    "make_intent_id",
    "refresh_intents",
]
