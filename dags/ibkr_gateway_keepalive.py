"""Keeps the IBKR Client Portal session alive: every minute of the XNYS trading day (30 min before the open to
15 min after the close; holidays and early closes from the exchange calendar) it tickles the gateway, tries the
usual reauthentication when the brokerage session is down, records the state in ``ops.gateway_health`` and alerts
(``gateway_unhealthy`` / ``gateway_recovered``) only when the health flips: the run itself succeeds whatever the
gateway's state (a failure means the check could not run, and the failure notifier reports that). The trading DAGs'
``ibkr_auth`` gate reads the same record and skips their runs while the gateway is unhealthy.
"""

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task

from include.alerts.notifiers import failure_notifier
from include.timetables import ExchangeIntradayTimetable


@dag(
    schedule=ExchangeIntradayTimetable(
        "XNYS", every=timedelta(minutes=1), pre_open=timedelta(minutes=30), post_close=timedelta(minutes=15)
    ),
    start_date=datetime(2025, 1, 2),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=2),
    default_args={"retries": 1, "retry_delay": timedelta(seconds=10), "on_failure_callback": failure_notifier()},
    tags=["ibkr", "ops", "monitoring"],
    params={
        "try_reauth": Param(
            True, type="boolean", description="Try ssodh/init and reauthenticate when the brokerage session is down"
        ),
    },
    doc_md=__doc__,
)
def ibkr_gateway_keepalive():
    @task(pool="ibkr_api", execution_timeout=timedelta(seconds=50), multiple_outputs=False)
    def tickle_gateway() -> dict:
        from include.gateway.tasks import keepalive

        context = get_current_context()
        return keepalive(context, try_reauth=bool(context["params"]["try_reauth"]))

    tickle_gateway()


ibkr_gateway_keepalive()
