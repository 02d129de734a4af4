"""``GatewayGateSensor``: the trading DAG's ``ibkr_auth`` task. Like ``IBKRAuthSensor`` it waits (reschedule mode)
while the gateway is unreachable, but an unhealthy session (competing, logged out, no bridge after the recovery
attempt, or a fresh unhealthy keepalive record) skips the run: its trading tasks skip and no order is placed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from include.sensors.ibkr_auth import IBKRAuthSensor

SKIP_TAG = "trading_skipped"


class GatewayGateSensor(IBKRAuthSensor):
    def __init__(self, *, max_record_age: float = 180.0, reauth_wait_s: float = 2.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_record_age = max_record_age
        self.reauth_wait_s = reauth_wait_s

    def poke(self, context: Any) -> bool:
        from airflow.sdk.exceptions import AirflowSkipException

        from include.gateway.gate import evaluate
        from include.hooks.ibkr import IBKRHook
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
