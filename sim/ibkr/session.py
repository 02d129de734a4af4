"""Simulated clock and the two-tier session state machine (§2, §3): SSO vs brokerage session, priming,
idle timeout and nightly reset."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta

from sim.ibkr.exchange import last_nightly_reset

SERVER_VERSION = "Build 10.25.0m, Nov 17, 2023 11:29:27 AM"


class SimClock:
    """Real UTC time, a fixed instant, or a fixed start that then runs at real speed."""

    def __init__(self, fixed: datetime | None) -> None:
        self.set(fixed)

    def set(self, when: datetime | None, running: bool = False) -> None:
        self._fixed = when.astimezone(UTC) if when is not None else None
        self._running = running
        self._base = time.monotonic()

    def now(self) -> datetime:
        if self._fixed is None:
            return datetime.now(UTC)
        if self._running:
            return self._fixed + timedelta(seconds=time.monotonic() - self._base)
        return self._fixed

    def describe(self) -> dict[str, object]:
        mode = "real" if self._fixed is None else ("running" if self._running else "fixed")
        return {"now": self.now().isoformat(), "mode": mode}


class Session:
    def __init__(self, state: str, competing: bool, primed: bool, now: datetime, mac: str) -> None:
        self.state = state
        self.competing = competing
        self.mac = mac
        self.session_id = secrets.token_hex(16)
        self.started_at = now
        self.last_tickle = now
        self.primed = primed and state == "authenticated"
        self.primed_at = now
        self.subscriptions: dict[int, set[str]] = {}  # conid -> fields (§5 pre-flight done)
        self.live_orders_ready = False  # §8.3: the first live-orders call is a pre-flight
        # §8.2 /iserver/questions/suppress holds "for the session": a new brokerage session asks them again.
        self.suppressed_questions: set[str] = set()

    @property
    def authenticated(self) -> bool:
        return self.state == "authenticated"

    def unprime(self) -> None:
        self.primed = False
        self.subscriptions.clear()
        self.live_orders_ready = False

    def prime(self, now: datetime) -> None:
        if not self.primed:
            self.primed, self.primed_at = True, now

    def start_brokerage(self, now: datetime) -> None:
        """A new brokerage session: nothing primed or subscribed yet (§3.4)."""
        self.state = "authenticated"
        self.session_id = secrets.token_hex(16)
        self.started_at = self.last_tickle = now
        self.suppressed_questions = set()
        self.unprime()

    def drop_brokerage(self) -> None:
        self.state = "sso_only"
        self.suppressed_questions = set()
        self.unprime()

    def logout(self) -> None:
        self.state = "logged_out"
        self.suppressed_questions = set()
        self.unprime()

    def housekeep(self, now: datetime, idle_timeout_s: float) -> None:
        """Lazy time-driven transitions, evaluated on each request against the simulated clock."""
        if self.state != "authenticated":
            return
        if (now - self.last_tickle).total_seconds() > idle_timeout_s:
            self.drop_brokerage()  # §9: the brokerage session times out without /tickle
            return
        if self.primed and self.primed_at < last_nightly_reset(now) <= now:
            # §9 nightly reset (~01:00 New York): clients then see "Please query /accounts first".
            # Whether the brokerage session also drops is UNCONFIRMED; we keep it and lose priming.
            self.unprime()

    def tickle(self, now: datetime) -> None:
        self.last_tickle = now

    def auth_status(self, server_name: str) -> dict[str, object]:
        """§2.1 BrokerageSessionStatus; without a brokerage session only the flags and MAC (ibeam#117)."""
        if not self.authenticated:
            return {"authenticated": False, "competing": self.competing, "connected": False, "MAC": self.mac}
        return {
            "MAC": self.mac,
            "authenticated": True,
            "competing": self.competing,
            "connected": True,
            "fail": "",
            "hardware_info": f"{self.session_id[:8]}|{self.mac}",
            "message": "",
            "serverInfo": {"serverName": server_name, "serverVersion": SERVER_VERSION},
        }
