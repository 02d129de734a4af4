"""Execution errors. Each says which order (symbol, intent id), what the broker answered (HTTP status,
message) and what the ledger now holds, so a task log alone tells what happened and what a retry will do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ExecutionError(Exception):
    """Base class for order-execution errors."""


class ConcurrentExecutionError(ExecutionError):
    """Another process holds the run's execution lock."""


class IntentConflictError(ExecutionError):
    """The ledger already holds this intent with different terms (another mode, or a duplicate plan)."""


@dataclass(frozen=True)
class IntentFailure:
    symbol: str
    side: str
    intent_id: str
    ledger_status: str  # what the ledger holds now: pending (will be sent on retry), submitted (reconciled
    # against the broker on retry), rejected/failed (final)
    error_type: str
    message: str
    http_status: int | None = None
    endpoint: str | None = None

    def describe(self) -> str:
        http = f"HTTP {self.http_status}" if self.http_status else "no HTTP status"
        where = f" on {self.endpoint}" if self.endpoint else ""
        return (f"{self.side} {self.symbol} intent {self.intent_id}: {self.error_type} ({http}{where}): "
                f"{self.message} -> ledger status {self.ledger_status!r}; {_NEXT[self.ledger_status]}")


_NEXT = {
    "pending": "never reached the broker, a retry submits it",
    "submitted": "outcome unknown, a retry matches it against the broker's live orders/trades by cOID "
    "before any resubmission",
    "unknown": "the gateway may have accepted it (answer lost or malformed): a retry matches it by cOID first",
    "acknowledged": "the broker holds the order",
    "vetoed": "never sent: the re-check at submission refused it",
    "rejected": "final, not resubmitted",
    "failed": "final, not resubmitted (check the account in TWS/Client Portal)",
}


class OrderExecutionError(ExecutionError):
    """Some orders of the batch were not placed; ``failures`` has one entry per order."""

    def __init__(self, failures: list[IntentFailure], attempted: int, stopped_early: bool = False,
                 report: Any = None) -> None:
        self.failures = failures
        self.attempted = attempted
        self.report = report  # the ExecutionReport: the ledger rows as left by this attempt
        lines = [f"{len(failures)} of {attempted} order(s) not placed or not confirmed:"]
        lines += [f"  - {f.describe()}" for f in failures]
        if stopped_early and any(f.error_type == "NotAttempted" for f in failures):
            lines.append("  submission stopped at the first gateway-wide problem (IBKR: place the next order "
                         "only once the previous one is acknowledged); the remaining orders stay pending")
        super().__init__("\n".join(lines))

    @property
    def retryable(self) -> bool:
        """Whether a retry can help: some order never reached a final answer (pending, submitted, unknown)."""
        return any(f.ledger_status in ("pending", "submitted", "unknown") for f in self.failures)
