"""Kill switch: set the trading state (ACTIVE / REDUCING / HALTED) every trading run's risk check reads.

Trigger with ``{"command": "halt", "reason": "..."}`` (or reduce / resume / status). REDUCING allows only
position-reducing orders, HALTED none. The same as ``python -m include.risk.kill_switch``.
"""

from datetime import datetime

from airflow.sdk import Param, dag, get_current_context, task

from include.alerts.notifiers import failure_notifier


@dag(
    schedule=None,
    start_date=datetime(2025, 1, 2),
    catchup=False,
    tags=["trading", "risk", "ops"],
    default_args={"retries": 1, "on_failure_callback": failure_notifier()},
    params={
        "command": Param("status", type="string", enum=["status", "halt", "reduce", "resume"]),
        "reason": Param("", type="string", description="Required to change the state (kept in its history)"),
    },
    doc_md=__doc__,
)
def trading_control():
    @task(multiple_outputs=False)
    def set_trading_state() -> dict:
        from include.risk.kill_switch import set_trading_state
        from include.risk.state_store import read_state
        from include.settings import load_settings

        context = get_current_context()
        params, dsn = context["params"], load_settings().require_market_db_url()
        if params["command"] != "status":
            set_trading_state(dsn, params["command"], params["reason"],
                              changed_by=f"airflow:{context['dag'].dag_id}/{context['run_id']}")
        return read_state(dsn).model_dump(mode="json")

    set_trading_state()


trading_control()
