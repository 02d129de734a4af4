"""The check protocol (freqtrade "protections" style): one small class per file, approve or veto with a reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from include.risk.limits import RiskLimits
from include.risk.models import CheckResult, OrderProposal, RiskContext


@dataclass
class RunTally:
    """What this run has approved so far (order counts and exposure are limits across signals)."""

    approved_orders: int = 0
    added_gross: float = 0.0  # $ of approved BUYs
    added_position: dict[str, float] = field(default_factory=dict)  # $ of approved BUYs per symbol


class RiskCheck(Protocol):
    name: str

    def check(self, order: OrderProposal, ctx: RiskContext, limits: RiskLimits, run: RunTally) -> CheckResult: ...


def ok(name: str, reason: str) -> CheckResult:
    return CheckResult(check=name, approved=True, reason=reason)


def veto(name: str, reason: str) -> CheckResult:
    return CheckResult(check=name, approved=False, reason=reason)
