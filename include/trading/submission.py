"""``SubmissionChecks``: the re-check right before each intent is claimed for submission, run by the executor in
the claiming transaction; any refusal leaves the intent ``vetoed``. What is re-checked and why: docs/execution.md.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from include.marketdata.calendar import MarketCalendar

if TYPE_CHECKING:
    from include.execution.models import IntentRecord
    from include.ibkr.client import IBKRClient
    from include.risk.limits import RiskLimits
    from include.trading.context import TradingRun

log = logging.getLogger(__name__)
# A batch's quotes, fetched in one snapshot request, stand in for a per-intent request this long (their IBKR time is
# still checked against max_quote_age_seconds at each claim); after that each intent fetches its own.
PREFETCH_TTL_S = 30.0


class SubmissionChecks:
    def __init__(self, run: TradingRun, limits: RiskLimits, *, now: Any, broker: IBKRClient | None = None,
                 exchange: str = "XNYS") -> None:
        self.run, self.limits, self.now, self.broker = run, limits, now, broker
        self.calendar = MarketCalendar(exchange)
        self._positions: dict[str, float] | None = None
        self._live: dict[str, Any] = {}
        self._quotes: dict[int, Any] = {}
        self._quoted_at = 0.0

    def prefetch_quotes(self, contracts: list[Any]) -> int:
        """One snapshot request for the batch's conids instead of one per intent; returns how many came back.
        Any failure leaves the per-intent request in place."""
        from include.ibkr.errors import IBKRError

        if self.broker is None or not contracts:
            return 0
        try:
            snaps = self.broker.snapshot(contracts, attempts=3)
        except IBKRError as exc:
            log.warning("batch snapshot before submission failed (%s): one snapshot per intent instead", exc)
            return 0
        self._quotes = {s.conid: s for s in snaps}
        self._quoted_at = time.monotonic()
        return len(self._quotes)

    def _broker_book(self) -> dict[str, float]:
        """Positions and live orders, read once per batch (orders this batch sends are in the ledger)."""
        if self._positions is None:
            assert self.broker is not None
            self._positions = {p.symbol: float(p.quantity) for p in self.broker.positions()}
            self._live = {o.coid: o for o in self.broker.live_orders() if o.coid}
        return self._positions

    def __call__(self, cur: Any, intent: IntentRecord) -> str | None:
        return (self._state(cur, intent) or self._session(intent) or self._market_open() or self._verdict(cur, intent)
                or self._quote(intent) or self._sellable(cur, intent))

    def _state(self, cur: Any, intent: IntentRecord) -> str | None:
        # FOR SHARE: a HALT being written waits for this claim to commit, and a committed HALT is seen here.
        cur.execute("SELECT to_regclass('trading.trading_state') IS NOT NULL")
        if not cur.fetchone()[0]:
            return None
        cur.execute("SELECT state, reason FROM trading.trading_state WHERE id = 1 FOR SHARE")
        row = cur.fetchone()
        state, reason = row if row else ("ACTIVE", "")
        if state == "HALTED":
            return f"trading is HALTED ({reason}): nothing is submitted"
        reduces = intent.side == "SELL" and (intent.position_before or 0) > 0
        if state == "REDUCING" and not reduces:
            return f"trading is REDUCING ({reason}): only orders that reduce a position go out"
        return None

    def _session(self, intent: IntentRecord) -> str | None:
        if intent.session_date is not None and intent.session_date != self.run.session:
            return (f"decided for session {intent.session_date}, but this run trades session {self.run.session}: "
                    "a decision does not carry over to another session")
        return None

    def _market_open(self) -> str | None:
        if self.run.ignore_market_hours:  # dry runs only (refused in paper and live when the run starts)
            return None
        now = self.now()
        if not self.calendar.is_open(now):
            return f"the market is closed at {now.isoformat(timespec='seconds')} (XNYS calendar)"
        return None

    def _verdict(self, cur: Any, intent: IntentRecord) -> str | None:
        from include.quality.verdicts import session_verdicts

        verdict = session_verdicts(cur.connection, [intent.symbol], self.run.data_session)[intent.symbol]
        if verdict.verdict == "fail":
            return f"data-quality verdict for {intent.symbol} on {self.run.data_session} is fail: " + \
                "; ".join(verdict.reasons)
        return None

    def _quote(self, intent: IntentRecord) -> str | None:
        """A quote fetched now, no older than max_quote_age_seconds, with the limit inside the collar around it."""
        if self.broker is None or intent.conid is None:
            return None  # dry run: no order endpoint and no fresh quote; risk checked the run's quotes
        from include.ibkr.errors import IBKRError
        from include.ibkr.models import Contract

        snap = self._quotes.get(intent.conid) if time.monotonic() - self._quoted_at <= PREFETCH_TTL_S else None
        try:
            if snap is None:
                (snap,) = self.broker.snapshot([Contract(conid=intent.conid, symbol=intent.symbol)], attempts=3)
        except IBKRError as exc:
            return f"no quote for {intent.symbol} at submission: {exc}"
        quoted = getattr(snap, "quote_at", None)
        if snap.last is None or snap.last <= 0:
            return f"the quote for {intent.symbol} at submission has no last price"
        if quoted is None:
            return f"the quote for {intent.symbol} carries no timestamp (_updated): it cannot be shown to be fresh"
        age = (self.now() - quoted).total_seconds()
        if age > self.limits.max_quote_age_seconds:
            return (f"the quote for {intent.symbol} is {age:.0f} s old (max_quote_age_seconds "
                    f"{self.limits.max_quote_age_seconds:g})")
        if intent.limit_price is not None:
            moved = abs(intent.limit_price - snap.last) / snap.last
            if moved > self.limits.price_collar_pct:
                return (f"limit {intent.limit_price:g} is {moved:.2%} from the last price {snap.last:g} at submission "
                        f"(collar {self.limits.price_collar_pct:.2%})")
        return None

    def _sellable(self, cur: Any, intent: IntentRecord) -> str | None:
        """A SELL never exceeds the long position net of the other working SELLs (at the broker and in the ledger)."""
        if intent.side != "SELL" or self.broker is None:
            return None
        from include.execution.ledger import working_sells

        held = self._broker_book().get(intent.symbol, 0.0)
        at_broker = sum(float(o.remaining_quantity or 0) for c, o in self._live.items()
                        if c != intent.coid and o.symbol == intent.symbol and o.side == "SELL")
        in_ledger = working_sells(cur, intent.mode, intent.symbol, exclude=(intent.intent_id, *self._live))
        sellable = held - at_broker - in_ledger
        if intent.quantity > sellable + 1e-9:
            return (f"SELL {intent.quantity:g} {intent.symbol} exceeds the long position net of working SELLs "
                    f"({held:g} held - {at_broker + in_ledger:g} in working SELLs = {sellable:g}): it would open a "
                    "short")
        return None


def decision_session(calendar: MarketCalendar, now: datetime) -> Any:
    """The session a decision taken at ``now`` trades in: today's while it has not closed, else the next one."""
    day = now.date()
    if calendar.is_session(day) and now < calendar.session(day).close:
        return day
    return calendar.next_session(day)


def data_session(calendar: MarketCalendar, now: datetime, lag: int = 0) -> Any:
    """The oldest session features and verdicts may be for: the last completed one, ``lag`` sessions back."""
    last = calendar.last_completed_session(now)
    return calendar.sessions_back(last, lag) if lag else last
