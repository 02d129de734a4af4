"""P7 under the real scheduler: MLflow's share of ``ibkr_trading_strategy`` runs with ``make up``'s settings
(LocalExecutor, one process per task, ``mlflow server`` on sqlite with a file:// artifact root and an http tracking
URI), paper mode against the simulator. Prints each run's MLflow seconds (every task's logging, summed by
end_mlflow_run) over its wall time. ``BENCH_P7_RUNS`` runs (default 3); ``MLFLOW_REST_LOGGING=0`` measures the
MlflowClient path instead of the REST one (include/tracking/rest.py).
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bench.common import mlflow_server, record, scratch_database

REPO = Path(__file__).resolve().parents[1]
SYMBOLS = ["AAPL", "MSFT"]
STRATEGIES = """
version: 1
strategies:
  - {id: 41, name: p7_rsi, symbols: [AAPL, MSFT], schedule: "@daily", mode: paper,
     risk: {max_order_notional: 2000, max_position_notional: 5000, price_collar_pct: 0.2},
     signal: {model: rsi_mean_reversion, oversold: 30, overbought: 70, full_confidence_distance: 15}}
"""


def _market(dsn: str, work: Path) -> datetime:
    """Bars, mart and a pass verdict for two symbols (as tests/dags/test_trading_under_scheduler.py); returns an
    instant one hour into the next session."""
    import psycopg2

    from include.marketdata import db
    from include.marketdata.calendar import MarketCalendar
    from include.quality.verdicts import ensure_schema
    from include.risk.state_store import ensure_schema as state_schema
    from sim.synthetic import build_mart, load_simulator_bars

    calendar = MarketCalendar()
    session = calendar.next_session(datetime.now(UTC).date())
    last = calendar.previous_session(session)
    load_simulator_bars(dsn, SYMBOLS, 260, start=calendar.sessions_back(last, 259))
    build_mart(dsn, work / "dbt-target", select="+fct_latest_features")
    with db.connection(dsn) as conn:
        ensure_schema(conn)
        state_schema(conn)
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("""INSERT INTO quality.symbol_verdicts (run_key, symbol, verdict, reasons, range_start, range_end,
                           bars, last_session, failed_checks, warned_checks)
                       SELECT 'bench-p7', s, 'pass', '[]', %s, %s, 260, %s, 0, 0 FROM unnest(%s::text[]) s""",
                    (calendar.sessions_back(last, 59), last, last, SYMBOLS))
    return calendar.session(session).open + timedelta(hours=1)


def main() -> None:
    from scripts.devstack import gateway_connection_json
    from sim.ibkr.config import SimulatorConfig
    from sim.ibkr.server import SimulatorServer
    from tests.dags.scheduler_stack import SchedulerStack

    runs = int(os.environ.get("BENCH_P7_RUNS", "3"))
    rest = os.environ.get("MLFLOW_REST_LOGGING", "1") not in ("0", "false", "no", "off")
    tag = uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory(prefix="bench-p7-") as tmp, scratch_database(f"p7_market_{tag}") as dsn, \
            scratch_database(f"p7_airflow_{tag}") as metadata_url:
        work = Path(tmp)
        at = _market(dsn, work)
        (work / "strategies.yaml").write_text(STRATEGIES)
        with mlflow_server(work) as uri:
            stack = None
            try:
                with SimulatorServer(SimulatorConfig(fill_mode="immediate")) as sim:
                    clock = {"now": at.isoformat(), "running": True}
                    httpx.post(f"{sim.admin_url}/clock", json=clock).raise_for_status()
                    env = {"MARKET_DB_URL": dsn, "AIRFLOW_CONN_MARKET_DB": dsn, "IBKR_GATEWAY_URL": sim.base_url,
                           "AIRFLOW_CONN_IBKR_DEFAULT": gateway_connection_json(sim.base_url),
                           "MLFLOW_TRACKING_URI": uri, "MLFLOW_REST_LOGGING": "1" if rest else "0",
                           "STRATEGIES_FILE": str(work / "strategies.yaml"),
                           "QUALITY_REPORTS_DIR": str(work / "quality"),
                           "TRADING_CLOCK": at.isoformat(), "GX_ANALYTICS_ENABLED": "false",
                           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
                    stack = SchedulerStack(work, metadata_url, env).start()
                    stack.dag_ready("ibkr_trading_strategy")
                    shares = []
                    for i in range(runs):
                        run_id = stack.trigger("ibkr_trading_strategy", {"strategy_id": 41, "dry_run": False,
                                                                         "mode": "paper"}, f"manual__p7_{i}")
                        state = stack.wait_run("ibkr_trading_strategy", run_id, timeout=600)
                        metrics = _metrics(uri, run_id)
                        shares.append(metrics["mlflow_share"])
                        print(f"run {i + 1} ({state}): MLflow {metrics['mlflow_seconds']:.2f} s of "
                              f"{metrics['run_seconds']:.2f} s = {100 * metrics['mlflow_share']:.1f}%", flush=True)
            finally:
                if stack is not None:
                    stack.stop()
        shares.sort()
        median = shares[len(shares) // 2]
        record("P7", f"MLflow's share of a trading run under the real scheduler (LocalExecutor, mlflow server, "
                     f"{'REST' if rest else 'MlflowClient'} logging), median of {runs}",
               f"{100 * median:.1f} %", "<= 10 %", median <= 0.10)
        print(f"P7 MLflow share under the real scheduler ({'REST' if rest else 'MlflowClient'} logging, LocalExecutor, "
              f"mlflow server): median {100 * shares[len(shares) // 2]:.1f}% of {runs} runs (goal <= 10%)")


def _metrics(uri: str, run_id: str) -> dict[str, float]:
    from include.tracking.rest import RestTracking

    api = RestTracking(uri)
    experiment = api.experiment_by_name("ibkr-strategy-p7_rsi")
    for _ in range(30):
        found = api.search_run_ids(experiment["experiment_id"], f"tags.run_id = '{run_id}'", [])
        if found and "mlflow_share" in (metrics := api.get_run(found[0])["metrics"]):
            return metrics
        time.sleep(1)
    raise RuntimeError(f"no mlflow_share metric for {run_id}")


if __name__ == "__main__":
    main()
