"""``IBKRAuthSensor``: waits for a healthy brokerage session, trying reauthentication on the way."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator

from include.hooks.ibkr import IBKRHook
from include.settings import IBKR_CONN_ID


class IBKRAuthSensor(BaseSensorOperator):
    """Succeeds when the gateway session is authenticated, connected, not competing and primed.

    Runs in ``reschedule`` mode by default so no worker slot is held while a human logs in at the
    gateway. Each poke that finds no brokerage session asks the gateway to reauthenticate once.
    """

    template_fields = ("ibkr_conn_id",)

    def __init__(
        self,
        *,
        ibkr_conn_id: str = IBKR_CONN_ID,
        try_reauth: bool = True,
        mode: str = "reschedule",
        poke_interval: float = 30.0,
        timeout: float = timedelta(minutes=15).total_seconds(),
        **kwargs: Any,
    ) -> None:
        super().__init__(mode=mode, poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.ibkr_conn_id = ibkr_conn_id
        self.try_reauth = try_reauth

    def poke(self, context: Any) -> bool:
        from include.ibkr.errors import (
            CompetingSessionError,
            GatewayUnreachableError,
            NoBridgeError,
            NotAuthenticatedError,
        )

        # One retry at most: the sensor's own re-poke is the retry loop, so backing off here only
        # delays the next check.
        with IBKRHook(self.ibkr_conn_id, retries=1, backoff_initial=0.2).get_conn() as client:
            try:
                status = client.ensure_session(try_reauth=self.try_reauth)
            except (NotAuthenticatedError, NoBridgeError, CompetingSessionError) as exc:
                self.log.warning("IBKR gateway not ready: %s", exc)
                return False
            except GatewayUnreachableError as exc:
                # Keep waiting (the gateway may be restarting); the timeout turns this into a failure.
                self.log.error("IBKR gateway unreachable: %s", exc)
                return False
        self.log.info("IBKR session healthy (server %s)", status.server_name)
        return True
