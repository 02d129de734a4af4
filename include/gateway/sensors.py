"""The gateway sensors: ``IBKRAuthSensor`` waits for a healthy brokerage session (reauthenticating on the way);
``GatewayGateSensor``, the trading DAGs' ``ibkr_auth`` task, also skips the run while the session is unhealthy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator

from include.ibkr.hook import IBKRHook
from include.settings import IBKR_CONN_ID


class IBKRAuthSensor(BaseSensorOperator):
    """Succeeds when the gateway session is authenticated, connected, not competing and primed.

    Runs in ``reschedule`` mode by default so no worker slot is held while a human logs in at the
    gateway. Each poke that finds no brokerage session asks the gateway to reauthenticate once
    (``attempt_reauth``, the guide's name; ``try_reauth`` is the same switch).
    """

    template_fields = ("ibkr_conn_id",)

    def __init__(
        self,
        *,
        ibkr_conn_id: str = IBKR_CONN_ID,
        attempt_reauth: bool | None = None,
        try_reauth: bool = True,
        mode: str = "reschedule",
        poke_interval: float = 30.0,
        timeout: float = timedelta(minutes=15).total_seconds(),
        **kwargs: Any,
    ) -> None:
        super().__init__(mode=mode, poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.ibkr_conn_id = ibkr_conn_id
        self.try_reauth = try_reauth if attempt_reauth is None else attempt_reauth

    @property
    def attempt_reauth(self) -> bool:
        return self.try_reauth

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


SKIP_TAG = "trading_skipped"


class GatewayGateSensor(IBKRAuthSensor):
    def __init__(self, *, max_record_age: float = 180.0, reauth_wait_s: float = 2.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_record_age = max_record_age
        self.reauth_wait_s = reauth_wait_s

    def poke(self, context: Any) -> bool:
        from airflow.sdk.exceptions import AirflowSkipException

        from include.gateway.gate import evaluate
        from include.ibkr.hook import IBKRHook
        from include.settings import load_settings

        settings = load_settings()
        hook = IBKRHook(self.ibkr_conn_id, retries=1, backoff_initial=0.2)  # the re-poke is the retry loop
        decision = evaluate(
            lambda: hook.get_conn(settings), settings.market_db_url, dag_id=getattr(context.get("dag"), "dag_id", None),
            run_id=context.get("run_id"), max_age=timedelta(seconds=self.max_record_age),
            reauth_wait_s=self.reauth_wait_s,
        )  # fmt: skip
        if decision.allow:
            self.log.info("IBKR gateway gate open: %s", decision.reason)
            return True
        if decision.wait:
            self.log.error("IBKR gateway unreachable, waiting: %s", decision.reason)
            return False
        reason = f"IBKR gateway unhealthy, not trading: {decision.reason}"
        self.log.warning("%s. The trading tasks of this run are skipped; no order is placed.", reason)
        self._tag_mlflow_run(context, decision.state, reason)
        raise AirflowSkipException(reason)

    def _tag_mlflow_run(self, context: Any, state: str, reason: str) -> None:
        from include.tracking import MLFLOW_RUN_ID_XCOM_KEY, START_TASK_ID, RunLogger

        mlflow_run_id = context["ti"].xcom_pull(task_ids=START_TASK_ID, key=MLFLOW_RUN_ID_XCOM_KEY)
        if not mlflow_run_id:
            return
        try:
            RunLogger(mlflow_run_id).set_tags({SKIP_TAG: "gateway_unhealthy", "skip_reason": reason[:5000],
                                               "gateway_state": state})  # fmt: skip
        except Exception:  # the skip stands without the tag
            self.log.exception("could not tag MLflow run %s with the skip reason", mlflow_run_id)
