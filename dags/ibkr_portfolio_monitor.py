"""Portfolio monitoring and reconciliation, every 10 minutes while XNYS is open.

``snapshot``: positions, account summary, ledger, live orders and executions from the gateway into ``raw.*`` in one
transaction (the ledger's open intents are refreshed from the same broker view). ``dbt_portfolio`` (Cosmos,
``tag:portfolio``): P&L per symbol (average cost) and in total, exposure, daily equity and drawdown.
``reconcile``: broker vs the order ledger; an unknown position, a missing fill or an orphan open order sets the
trading state to HALTED with the reason, alerts, and is recorded in ``trading.reconciliations``.
``log_run``: the figures and the reconciliation report in MLflow (``ibkr-portfolio``).
"""

from datetime import datetime, timedelta

from airflow.sdk import Param, TriggerRule, dag, get_current_context, task
from cosmos import DbtTaskGroup

from include.alerts.notifiers import failure_notifier
from include.dbt_project import PORTFOLIO_SELECTOR, cosmos_task_group_kwargs
from include.timetables import ExchangeIntradayTimetable


@dag(
    schedule=ExchangeIntradayTimetable("XNYS", every=timedelta(minutes=10)),
    start_date=datetime(2025, 1, 2),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=9),
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30), "on_failure_callback": failure_notifier()},
    tags=["monitoring", "ibkr"],
    params={
        "accept_baseline": Param(False, type="boolean",
                                 description="Record the broker's holdings the ledger does not explain as the "
                                             "accepted baseline (positions held before the system traded)."),
        "baseline_reason": Param("", type="string", description="Required with accept_baseline."),
        "grace_seconds": Param(120, type="integer", minimum=0,
                               description="Differences of intents changed this recently are deferred."),
    },
    doc_md=__doc__,
)
def ibkr_portfolio_monitor():
    @task(pool="ibkr_api", multiple_outputs=False)
    def snapshot() -> dict:
        from include.portfolio import tasks

        return tasks.snapshot(get_current_context())

    @task(multiple_outputs=False)
    def reconcile(snap: dict) -> dict:
        from include.portfolio import tasks

        return tasks.reconcile(snap, get_current_context())

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def log_run() -> str:
        """Also after failures (reads what the other tasks pushed): the MLflow run is then FAILED."""
        from include.portfolio import tasks

        context = get_current_context()
        pull = context["ti"].xcom_pull
        return tasks.log_run(pull(task_ids="snapshot"), pull(task_ids="reconcile"), context)

    models = DbtTaskGroup(group_id="dbt_portfolio", **cosmos_task_group_kwargs(select=(PORTFOLIO_SELECTOR,)))
    snap = snapshot()
    recon = reconcile(snap)
    snap >> models
    [models, recon] >> log_run()


ibkr_portfolio_monitor()
