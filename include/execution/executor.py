"""``execute_intents``: each approved decision recorded in the ledger, re-checked, then simulated (dry_run) or
sent with its intent id as cOID (paper/live), never twice. The sequence and why: docs/execution.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from include.execution import ledger
from include.execution.broker import Broker, BrokerView, match_at_broker, poll_status
from include.execution.errors import (
    ExecutionError,
    IntentConflictError,
    IntentFailure,
    OrderExecutionError,
)
from include.execution.models import (
    FAILED,
    PENDING,
    REJECTED,
    SIMULATED,
    SUBMITTED,
    TERMINAL,
    UNKNOWN,
    UNRESOLVED,
    VETOED,
    IntentRecord,
    OrderPlan,
    RunContext,
)
from include.execution.submit import classify, failure_of, submit_one

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

log = logging.getLogger("include.execution")
_LOUD = (REJECTED, FAILED, UNKNOWN)  # an intent of this run left in one of these fails the task, on every attempt


@dataclass(frozen=True)
class ExecutionReport:
    """Final ledger rows (in plan order) and what this call did with each."""

    mode: str
    intents: list[IntentRecord]
    submitted: list[str] = field(default_factory=list)  # POSTed by this call
    reconciled: list[str] = field(default_factory=list)  # found at the broker by cOID: not resubmitted
    skipped: list[str] = field(default_factory=list)  # decided by another run earlier in the session
    simulated: list[str] = field(default_factory=list)  # dry_run rows written by this call
    vetoed: dict[str, str] = field(default_factory=dict)  # intent id -> why the re-check at submission refused it
    elapsed_s: float = 0.0

    def counts(self) -> dict[str, int]:
        by_status: dict[str, int] = {}
        for intent in self.intents:
            by_status[intent.status] = by_status.get(intent.status, 0) + 1
        return {"submitted": len(self.submitted), "reconciled": len(self.reconciled), "skipped": len(self.skipped),
                "simulated": len(self.simulated), "vetoed_at_submission": len(self.vetoed), **by_status}


class SubmissionGate(Protocol):
    """The re-check right before an intent is claimed, inside the claiming transaction (``cur``): returns why the
    intent must not go out (trading state, market hours, quote, data quality, position), or None."""

    def __call__(self, cur: Any, intent: IntentRecord) -> str | None: ...


def check_live_allowed(run: RunContext, env: Mapping[str, str] | None = None) -> None:
    """Live trading needs the strategy's mode ``live`` AND ALLOW_LIVE_TRADING=yes (``Settings.allow_live_trading``)."""
    from include.settings import Settings

    Settings.from_env(env).require_live_opt_in(run.mode, f"{run.dag_id} run {run.run_id}")


def execute_intents(
    plans: Sequence[OrderPlan], run: RunContext, *, dsn: str, broker: Broker | None = None,
    env: Mapping[str, str] | None = None, gate: SubmissionGate | None = None, settle_polls: int = 1,
    settle_interval_s: float = 0.5, lock_timeout_s: float = 300.0,
) -> ExecutionReport:
    """Record and execute approved orders, one decision per (strategy, symbol, session, mode).

    A decision another run already recorded for its session is not taken again (``skipped``); one left unresolved
    (by this run or by one that died) is matched at the broker by cOID, then resumed. ``gate`` re-checks each
    intent in the transaction that claims it; a refusal leaves it ``vetoed`` (never sent; a later run may take it
    up). dry_run: intents become ``simulated`` and ``broker`` is not used. paper/live: intents are committed
    ``pending`` before any POST, sent with cOID = intent id, then polled ``settle_polls`` times. Nothing approved:
    nothing happens, any mode.
    Raises ``OrderExecutionError`` (with ``.report``) when an intent of this run is rejected, failed or unknown,
    on every attempt, after handling the others.
    """
    started = time.monotonic()
    check_live_allowed(run, env)
    by_id: dict[str, OrderPlan] = {}
    for plan in plans:
        intent_id = plan.intent_id(run)
        if intent_id in by_id:
            raise IntentConflictError(
                f"two approved orders for {plan.symbol} in strategy {plan.strategy_id} for session "
                f"{plan.session_date}: a strategy takes one decision per symbol and session"
            )
        by_id[intent_id] = plan
    if not by_id:
        return ExecutionReport(run.mode, [], elapsed_s=round(time.monotonic() - started, 3))
    if run.mode != "dry_run" and broker is None:
        raise ValueError(f"mode {run.mode!r} needs a broker client to send {len(by_id)} order(s)")
    conn = ledger.connect(dsn)
    try:
        ledger.ensure_schema(conn)
        with ledger.submission_lock(conn, run.mode, lock_timeout_s):
            existing = {i.intent_id: i for i in ledger.load_intents(conn, list(by_id))}
            _check_conflicts(existing.values(), run)
            for intent_id, intent in list(existing.items()):
                if intent.status == VETOED:  # never sent: this run takes the decision up again
                    existing.pop(intent_id)
                    ledger.rearm(conn, intent, by_id[intent_id], run)
            submission = _Submission(conn, None if run.mode == "dry_run" else broker, run, by_id, existing, gate,
                                     settle_polls, settle_interval_s)  # dry_run never touches the broker
            report = submission.run()
    finally:
        conn.close()
    report = replace(report, elapsed_s=round(time.monotonic() - started, 3))
    log.info("%s run %s: %s in %.2f s", run.dag_id, run.run_id, report.counts(), report.elapsed_s)
    if submission.failures:
        raise OrderExecutionError(submission.failures, attempted=len(by_id), stopped_early=submission.stopped,
                                  report=report)
    return report


def _check_conflicts(existing: Iterable[IntentRecord], run: RunContext) -> None:
    for intent in existing:
        if intent.mode != run.mode:
            raise IntentConflictError(
                f"intent {intent.intent_id} ({intent.side} {intent.symbol}) was recorded in mode {intent.mode!r}; "
                f"this attempt runs in {run.mode!r}. Nothing was sent"
            )


def _in_order(intents: list[IntentRecord], by_id: dict[str, OrderPlan]) -> list[IntentRecord]:
    index = {i.intent_id: i for i in intents}
    return [index[i] for i in by_id if i in index]


class _Submission:
    """One execution attempt under the submission lock."""

    def __init__(self, conn: PgConnection, broker: Broker | None, run: RunContext, by_id: dict[str, OrderPlan],
                 existing: dict[str, IntentRecord], gate: SubmissionGate | None, settle_polls: int,
                 settle_interval_s: float) -> None:
        self.conn, self.broker, self.ctx, self.by_id, self.existing = conn, broker, run, by_id, existing
        self.gate, self.settle_polls, self.settle_interval_s = gate, settle_polls, settle_interval_s
        self.submitted: list[str] = []
        self.reconciled: list[str] = []
        self.simulated: list[str] = []
        self.vetoed: dict[str, str] = {}
        self.failures: list[IntentFailure] = []
        self.stopped = False

    def _mine(self, intent: IntentRecord) -> bool:
        return intent.dag_id == self.ctx.dag_id and intent.run_id == self.ctx.run_id

    def run(self) -> ExecutionReport:
        account = None
        if self.broker is not None:
            account = self.broker.account_id
            if self.ctx.mode == "paper" and not account.upper().startswith("DU"):
                raise ExecutionError(
                    f"mode 'paper' but the gateway's account {account[:2]}*** is not a paper (DU...) account: "
                    "nothing was recorded or sent. Log the gateway in with the paper user, or use mode 'live'"
                )
        self._record_new(account)
        intents = _in_order(ledger.load_intents(self.conn, list(self.by_id)), self.by_id)
        skipped = []
        for intent in intents:
            if intent.intent_id not in self.existing:
                continue
            if not self._mine(intent) and intent.status in UNRESOLVED:
                # Left pending/submitted/unknown by a run that died or gave up: matched at the broker by cOID, then
                # finished here (the submission lock keeps its first run out meanwhile), so the session converges.
                log.info("%s: decided for session %s by %s run %s and left %s; reconciling by cOID and finishing it",
                         intent.describe(), intent.session_date, intent.dag_id, intent.run_id, intent.status)
            elif not self._mine(intent):  # another run (or DAG) took this session's decision: not taken again
                skipped.append(intent.intent_id)
                log.info("%s: already decided for session %s by %s run %s (%s); not taken again",
                         intent.describe(), intent.session_date, intent.dag_id, intent.run_id, intent.status)
            elif intent.status in (REJECTED, FAILED):  # an earlier attempt of this run: still a failure
                skipped.append(intent.intent_id)
                self.failures.append(IntentFailure(
                    intent.symbol, intent.side, intent.intent_id, intent.status, "EarlierAttempt",
                    f"ended {intent.status} in an earlier attempt: {intent.last_error or intent.broker_status}",
                ))  # fmt: skip
            elif intent.status not in UNRESOLVED:
                skipped.append(intent.intent_id)
        if self.ctx.mode == "dry_run":
            final = [self._simulate(i) if i.status == PENDING and i.intent_id not in skipped else i for i in intents]
        else:
            final = []
            for intent in self._reconcile([i for i in intents if i.intent_id not in skipped]):
                if intent.status in UNRESOLVED:
                    intent = self._submit(intent)
                final.append(intent)
            final = self._settle(final)
            final = _in_order(final + [i for i in intents if i.intent_id in skipped], self.by_id)
        return ExecutionReport(self.ctx.mode, final, self.submitted, self.reconciled, skipped, self.simulated,
                               self.vetoed)

    def _record_new(self, account: str | None) -> None:
        """Resolve contracts and commit the new intents as ``pending`` before anything is sent."""
        from include.ibkr import errors as E

        rows = []
        for intent_id, plan in self.by_id.items():
            if intent_id in self.existing:
                continue
            extra: dict[str, Any] = {"account_id": account}
            if plan.conid is None and self.broker is not None:
                try:
                    extra["conid"] = self.broker.resolve_contract(plan.symbol).conid
                except E.UnknownSymbolError as exc:  # a bad symbol is final; session problems propagate
                    extra["last_error"] = str(exc)
            rows.append((plan, intent_id, FAILED if "last_error" in extra else PENDING, extra))
        ledger.insert_intents(self.conn, self.ctx, rows)
        for plan, intent_id, status, extra in rows:
            if status == FAILED:
                self.failures.append(IntentFailure(plan.symbol, plan.side, intent_id, FAILED, "UnknownSymbolError",
                                                   extra["last_error"], endpoint="/iserver/secdef/search"))

    def _claim(self, intent: IntentRecord, to_status: str, message: str) -> IntentRecord:
        """Re-check and claim in one transaction; a refusal leaves the intent ``vetoed`` with the reason."""
        claimed, reason = ledger.claim(self.conn, intent, to_status, try_number=self.ctx.try_number,
                                       message=message, gate=self.gate)
        if reason is not None:
            self.vetoed[intent.intent_id] = reason
            log.warning("%s not sent: %s", intent.describe(), reason)
        return claimed

    def _simulate(self, intent: IntentRecord) -> IntentRecord:
        done = self._claim(intent, SIMULATED, f"dry_run: recorded as simulated (ref price {intent.ref_price})")
        if done.status == SIMULATED:
            self.simulated.append(intent.intent_id)
            log.info("dry_run: %s recorded as simulated (ref price %s)", done.describe(), done.ref_price)
        return done

    def _reconcile(self, intents: list[IntentRecord]) -> list[IntentRecord]:
        """Intents a previous attempt may have sent are looked up at the broker before anything is resent."""
        from include.ibkr.errors import IBKRError

        stale = [i for i in intents if i.intent_id in self.existing and i.status in UNRESOLVED]
        if not stale:
            return intents
        log.info("%d intent(s) of run %s left pending/submitted by an earlier attempt: reading the broker's "
                 "live orders and executions before any resubmission", len(stale), self.ctx.run_id)
        try:
            view = BrokerView.fetch(self.broker)
        except IBKRError as exc:  # never resubmit without having looked
            names = ", ".join(f"{i.side} {i.symbol} ({i.intent_id}, {i.status})" for i in stale)
            raise ExecutionError(
                f"run {self.ctx.run_id}: an earlier attempt may have sent {names}, and reading the broker's live "
                f"orders to check failed: {exc}. Nothing was resubmitted; retry when the gateway answers"
            ) from exc
        stale_ids = {i.intent_id for i in stale}
        out = []
        for intent in intents:
            if intent.intent_id in stale_ids:
                matched = match_at_broker(self.conn, view, intent, self.ctx.try_number,
                                          note="; found after an interrupted attempt, not resubmitted")
                if matched is not None:
                    self.reconciled.append(intent.intent_id)
                    intent = matched
            out.append(intent)
        return out

    def _submit(self, intent: IntentRecord) -> IntentRecord:
        from include.ibkr import errors as E

        if self.stopped:
            self.failures.append(IntentFailure(intent.symbol, intent.side, intent.intent_id, intent.status,
                                               "NotAttempted", "not sent after an earlier gateway-wide error"))
            return intent
        why = ("resubmitting: the broker's live orders and executions show no order with this cOID"
               if intent.status != PENDING else "sending")
        intent = self._claim(intent, SUBMITTED, f"{why} (cOID {intent.coid})")
        if intent.status != SUBMITTED:
            return intent  # vetoed by the re-check: never sent
        try:
            intent = submit_one(self.conn, self.broker, intent, self.ctx.try_number, claimed=True)
        except E.DuplicateOrderError as exc:
            return self._duplicate(intent, exc)
        except E.IBKRError as exc:
            status, stop = classify(exc)
            current = ledger.load_intents(self.conn, [intent.intent_id])[0]
            intent = ledger.transition(self.conn, current, status, try_number=self.ctx.try_number, kind="error",
                                       message=f"{type(exc).__name__}: {exc}", last_error=str(exc))
            self.failures.append(failure_of(intent, exc))
            self.stopped = self.stopped or stop
            return intent
        self.submitted.append(intent.intent_id)
        if intent.status == REJECTED:  # accepted as a request, but the order itself is dead on arrival
            self.failures.append(IntentFailure(
                intent.symbol, intent.side, intent.intent_id, REJECTED, "OrderInactive",
                f"IBKR took the request as order {intent.broker_order_id} but set it {intent.broker_status!r} "
                "(an invalid order, e.g. insufficient buying power or no shares to sell)", http_status=200,
            ))  # fmt: skip
        return intent

    def _duplicate(self, intent: IntentRecord, exc: Exception) -> IntentRecord:
        """IBKR says the cOID is taken: the order exists (find it), or a placement is stuck at a question."""
        current = ledger.load_intents(self.conn, [intent.intent_id])[0]
        matched = match_at_broker(self.conn, BrokerView.fetch(self.broker), current, self.ctx.try_number,
                                  note="; cOID already registered at IBKR, not resubmitted")
        if matched is not None:
            self.reconciled.append(intent.intent_id)
            return matched
        message = (f"IBKR says cOID {intent.coid} is already registered, but neither its live orders nor its "
                   "executions show it: an earlier placement is probably stuck at a confirmation question or "
                   "belongs to an earlier brokerage session. Not resubmitted under another id; check TWS/Client "
                   "Portal (the cOID frees up after 24 h)")
        failed = ledger.transition(self.conn, current, FAILED, try_number=self.ctx.try_number, kind="error",
                                   message=message, last_error=message)
        self.failures.append(failure_of(failed, exc, message))
        return failed

    def _settle(self, intents: list[IntentRecord]) -> list[IntentRecord]:
        """Poll the orders this call touched a few times for fills; later changes are refresh_intents' job."""
        from include.ibkr import errors as E

        touched = set(self.submitted) | set(self.reconciled)
        for attempt in range(self.settle_polls):
            open_ids = {i.intent_id for i in intents
                        if i.intent_id in touched and i.status not in TERMINAL and i.broker_order_id}
            if not open_ids:
                break
            if attempt:
                time.sleep(self.settle_interval_s)
            for n, intent in enumerate(intents):
                if intent.intent_id in open_ids:
                    try:
                        intents[n] = poll_status(self.conn, self.broker, intent, self.ctx.try_number)
                    except E.IBKRError as exc:  # the order is placed; a failed status read is not a failure
                        log.warning("status of %s not read (%s); refresh_intents will catch up",
                                    intent.describe(), exc)
        return intents

