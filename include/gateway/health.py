"""One gateway health check: ``/tickle`` (keeps the session alive and returns its auth status), and when the
brokerage session is down, the client's usual recovery (``ensure_session``: ssodh/init, then reauthenticate).
Pure I/O through ``IBKRClient``; no Airflow, no database."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from include.ibkr import errors as E

if TYPE_CHECKING:
    from include.ibkr.client import IBKRClient
    from include.ibkr.models import AuthStatus

log = logging.getLogger(__name__)

# state labels, worst first: what a human has to do differs for each
UNREACHABLE = "unreachable"  # no HTTP answer: the gateway process/container is down
UNAUTHENTICATED = "unauthenticated"  # HTTP 401: no SSO session, a human must log in at the gateway
COMPETING = "competing"  # another TWS/mobile/web session holds the brokerage session
NO_BRIDGE = "no_bridge"  # SSO ok, brokerage session not started/connected
ERROR = "error"  # the gateway answered with an error (5xx, malformed): state unknown
HEALTHY = "healthy"


@dataclass(frozen=True)
class GatewayHealth:
    """What one check saw. The flags are the final state (after any recovery); ``initial_state`` what the tickle
    saw first; ``reauth_outcome`` is ``recovered``/``failed`` when a recovery was attempted."""

    checked_at: datetime
    state: str
    reachable: bool
    authenticated: bool
    connected: bool
    competing: bool
    server_name: str | None = None
    message: str = ""
    latency_ms: float | None = None
    initial_state: str = ""
    reauth_attempted: bool = False
    reauth_outcome: str | None = None
    error: str | None = None

    @property
    def healthy(self) -> bool:
        return self.state == HEALTHY

    @property
    def reason(self) -> str:
        """One line for logs, alerts and skip reasons."""
        if self.healthy:
            text = f"gateway healthy (server {self.server_name or '?'})"
        else:
            text = (f"gateway {self.state}: authenticated={self.authenticated} connected={self.connected} "
                    f"competing={self.competing}")  # fmt: skip
        if self.reauth_attempted:
            text += f"; reauthentication {self.reauth_outcome}"
        detail = self.error or self.message
        return f"{text} ({detail})" if detail and not self.healthy else text

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "checked_at": self.checked_at.isoformat(), "healthy": self.healthy}


def _state(status: AuthStatus, collision: bool = False) -> str:
    if status.competing or collision:
        return COMPETING
    if status.authenticated and status.connected:
        return HEALTHY
    return NO_BRIDGE


def _from_status(status: AuthStatus, **fields: Any) -> dict[str, Any]:
    return {"authenticated": status.authenticated, "connected": status.connected, "competing": status.competing,
            "server_name": status.server_name, "message": status.message, **fields}  # fmt: skip


def _observe(client: IBKRClient) -> tuple[dict[str, Any], float | None]:
    """Tickle once; the state it reports (falls back to /iserver/auth/status when the tickle carries none)."""
    started = time.perf_counter()
    try:
        tickle = client.tickle()
        latency_ms = (time.perf_counter() - started) * 1000
        status = tickle.auth_status or client.auth_status()
    except E.GatewayUnreachableError as exc:
        return _failed(UNREACHABLE, exc, reachable=False), None
    except E.NotAuthenticatedError as exc:
        return _failed(UNAUTHENTICATED, exc), (time.perf_counter() - started) * 1000
    except E.IBKRError as exc:
        return _failed(ERROR, exc), (time.perf_counter() - started) * 1000
    return _from_status(status, state=_state(status, tickle.collision), reachable=True), latency_ms


def _failed(state: str, exc: Exception, *, reachable: bool = True) -> dict[str, Any]:
    return {"state": state, "reachable": reachable, "authenticated": False, "connected": False,
            "competing": False, "error": str(exc)}  # fmt: skip


def _recover(client: IBKRClient, reauth_wait_s: float) -> tuple[dict[str, Any], str]:
    """``ensure_session`` (ssodh/init, else reauthenticate, then prime); never takes over a competing session."""
    try:
        status = client.ensure_session(try_reauth=True, reauth_wait_s=reauth_wait_s)
        return _from_status(status, state=HEALTHY, reachable=True), "recovered"
    except E.CompetingSessionError as exc:
        seen: dict[str, Any] = {**_failed(COMPETING, exc), "competing": True}
    except E.NotAuthenticatedError as exc:
        seen = _failed(UNAUTHENTICATED, exc)
    except E.GatewayUnreachableError as exc:
        return _failed(UNREACHABLE, exc, reachable=False), "failed"
    except E.IBKRError as exc:
        seen = _failed(NO_BRIDGE if isinstance(exc, E.NoBridgeError) else ERROR, exc)
    try:  # the flags as the gateway reports them now, for the record
        status = client.auth_status()
        seen.update(_from_status(status, state=seen["state"]))
    except E.IBKRError:
        pass
    return seen, "failed"


def check_gateway(client: IBKRClient, *, try_reauth: bool = True, reauth_wait_s: float = 2.0) -> GatewayHealth:
    """Tickle the gateway; if the brokerage session is down (not for a competing session: taking it over would
    log the trader out elsewhere, nor for an unreachable gateway) try the usual recovery once."""
    checked_at = datetime.now(UTC)
    seen, latency_ms = _observe(client)
    initial_state = seen["state"]
    attempted, outcome = False, None
    if try_reauth and initial_state in (NO_BRIDGE, UNAUTHENTICATED, ERROR):
        attempted = True
        log.warning("IBKR gateway %s (%s): trying to re-establish the brokerage session", initial_state,
                    seen.get("error") or seen.get("message") or "no detail")  # fmt: skip
        seen, outcome = _recover(client, reauth_wait_s)
        log.log(logging.INFO if outcome == "recovered" else logging.ERROR, "IBKR reauthentication %s: %s",
                outcome, seen.get("error") or seen["state"])  # fmt: skip
    return GatewayHealth(checked_at=checked_at, latency_ms=latency_ms, initial_state=initial_state,
                         reauth_attempted=attempted, reauth_outcome=outcome, **seen)  # fmt: skip
