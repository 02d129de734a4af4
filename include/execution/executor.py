"""``execute_intents``: record every approved order in the ledger first, then simulate it (dry_run) or send it
to the gateway with its intent id as cOID (paper/live), never twice: anything a previous attempt may have
sent is matched against the broker's live orders and executions by cOID before a resubmission."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

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
    UNRESOLVED,
    IntentRecord,
    OrderPlan,
    RunContext,
)
from include.execution.submit import classify, failure_of, submit_one

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

log = logging.getLogger("include.execution")


@dataclass(frozen=True)
class ExecutionReport:
    """Final ledger rows (in plan order) and what this call did with each."""

    mode: str
    intents: list[IntentRecord]
    submitted: list[str] = field(default_factory=list)  # POSTed by this call
    reconciled: list[str] = field(default_factory=list)  # found at the broker by cOID: not resubmitted
    skipped: list[str] = field(default_factory=list)  # already acknowledged/final before this call
    simulated: list[str] = field(default_factory=list)  # dry_run rows written by this call
    elapsed_s: float = 0.0

    def counts(self) -> dict[str, int]:
        by_status: dict[str, int] = {}
        for intent in self.intents:
            by_status[intent.status] = by_status.get(intent.status, 0) + 1
        return {"submitted": len(self.submitted), "reconciled": len(self.reconciled),
                "skipped": len(self.skipped), "simulated": len(self.simulated), **by_status}


def check_live_allowed(run: RunContext, env: Mapping[str, str] | None = None) -> None:
    """Live trading needs the strategy's mode ``live`` AND ALLOW_LIVE_TRADING=yes (``Settings.allow_live_trading``)."""
    from include.settings import Settings

    Settings.from_env(env).require_live_opt_in(run.mode, f"{run.dag_id} run {run.run_id}")


def execute_intents(
    plans: Sequence[OrderPlan], run: RunContext, *, dsn: str, broker: Broker | None = None,
    env: Mapping[str, str] | None = None, settle_polls: int = 1, settle_interval_s: float = 0.5,
    lock_timeout_s: float = 60.0,
) -> ExecutionReport:
    """Record and execute approved orders, idempotently per (dag_id, run_id, strategy, symbol, side).

    dry_run: rows become ``simulated`` (with ref/limit price); ``broker`` is not used at all.
    paper/live: rows are committed as ``pending`` before any POST, sent with cOID = intent id, then polled
    ``settle_polls`` times for status/fills (``refresh_intents`` does the rest later). Raises
    ``OrderExecutionError`` (with ``.report``) if any order could not be placed, after handling the others.
    """
    started = time.monotonic()
    check_live_allowed(run, env)
    by_id: dict[str, OrderPlan] = {}
    for plan in plans:
        intent_id = plan.intent_id(run)
        if intent_id in by_id:
            raise IntentConflictError(
                f"two approved orders for {plan.side} {plan.symbol} in strategy {plan.strategy_id} of run "
                f"{run.run_id}: an intent is one order per (strategy, symbol, side)"
            )
        by_id[intent_id] = plan
    if run.mode != "dry_run" and broker is None:
        raise ValueError(f"mode {run.mode!r} needs a broker client")
    conn = ledger.connect(dsn)
    failures: list[IntentFailure] = []
    stopped = False
    try:
        ledger.ensure_schema(conn)
        with ledger.run_lock(conn, run.dag_id, run.run_id, lock_timeout_s):
            existing = {i.intent_id: i for i in ledger.load_intents(conn, list(by_id))}
            _check_conflicts(existing.values(), run)
            if run.mode == "dry_run":
                report = _simulate(conn, by_id, existing, run)
            else:
                assert broker is not None
                submission = _Submission(conn, broker, run, by_id, existing, settle_polls, settle_interval_s)
                report = submission.run()
                failures, stopped = submission.failures, submission.stopped
    finally:
        conn.close()
    report = replace(report, elapsed_s=round(time.monotonic() - started, 3))
    log.info("%s run %s: %s in %.2f s", run.dag_id, run.run_id, report.counts(), report.elapsed_s)
    if failures:
        raise OrderExecutionError(failures, attempted=len(by_id), stopped_early=stopped, report=report)
    return report


def _check_conflicts(existing: Iterable[IntentRecord], run: RunContext) -> None:
    for intent in existing:
        if intent.mode != run.mode:
            raise IntentConflictError(
                f"intent {intent.intent_id} ({intent.side} {intent.symbol}) of run {run.run_id} was recorded in "
                f"mode {intent.mode!r}; this attempt runs in {run.mode!r}. A run keeps one mode: trigger a new "
                "run to trade it differently. Nothing was sent"
            )


def _simulate(conn: PgConnection, by_id: dict[str, OrderPlan], existing: dict[str, IntentRecord],
              run: RunContext) -> ExecutionReport:
    rows = [(plan, intent_id, SIMULATED, {}) for intent_id, plan in by_id.items() if intent_id not in existing]
    inserted = ledger.insert_intents(conn, run, rows)
    intents = _in_order(ledger.load_intents(conn, list(by_id)), by_id)
    for intent in intents:
        log.info("dry_run: %s recorded as simulated (ref price %s)", intent.describe(), intent.ref_price)
    skipped = [i for i in by_id if i not in inserted]
    return ExecutionReport(run.mode, intents, simulated=sorted(inserted, key=list(by_id).index), skipped=skipped)


def _in_order(intents: list[IntentRecord], by_id: dict[str, OrderPlan]) -> list[IntentRecord]:
    index = {i.intent_id: i for i in intents}
    return [index[i] for i in by_id if i in index]


class _Submission:
    """One paper/live execution attempt under the run lock."""

    def __init__(self, conn: PgConnection, broker: Broker, run: RunContext, by_id: dict[str, OrderPlan],
                 existing: dict[str, IntentRecord], settle_polls: int, settle_interval_s: float) -> None:
        self.conn, self.broker, self.ctx, self.by_id, self.existing = conn, broker, run, by_id, existing
        self.settle_polls, self.settle_interval_s = settle_polls, settle_interval_s
        self.submitted: list[str] = []
        self.reconciled: list[str] = []
        self.failures: list[IntentFailure] = []
        self.stopped = False

    def run(self) -> ExecutionReport:
        account = self.broker.account_id
        if self.ctx.mode == "paper" and not account.upper().startswith("DU"):
            raise ExecutionError(
                f"mode 'paper' but the gateway's account {account[:2]}*** is not a paper (DU...) account: "
                "nothing was recorded or sent. Log the gateway in with the paper user, or use mode 'live'"
            )
        self._record_new(account)
        intents = _in_order(ledger.load_intents(self.conn, list(self.by_id)), self.by_id)
        skipped = [i.intent_id for i in intents if i.intent_id in self.existing and i.status not in UNRESOLVED]
        for intent in intents:
            if intent.intent_id in skipped and intent.status in (REJECTED, FAILED):
                log.warning("%s ended %s in an earlier attempt (%s); not resent", intent.describe(), intent.status,
                            intent.last_error or intent.broker_status)
        intents = self._reconcile(intents)
        final: list[IntentRecord] = []
        for intent in intents:
            if intent.status in UNRESOLVED:
                intent = self._submit(intent)
            final.append(intent)
        final = self._settle(final)
        return ExecutionReport(self.ctx.mode, final, self.submitted, self.reconciled, skipped)

    def _record_new(self, account: str) -> None:
        """Resolve contracts and commit the new intents as ``pending`` before anything is sent."""
        from include.ibkr import errors as E

        rows = []
        for intent_id, plan in self.by_id.items():
            if intent_id in self.existing:
                continue
            extra: dict[str, Any] = {"account_id": account}
            if plan.conid is None:
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
        try:
            intent = submit_one(self.conn, self.broker, intent, self.ctx.try_number,
                                resubmission=intent.status == SUBMITTED)
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

