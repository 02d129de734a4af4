"""Order safety under the real scheduler (LocalExecutor, one process per task), paper mode, orders counted in the
simulator's book: concurrent runs, a re-trigger after fills, both DAGs of a strategy, a rejection and a clear, an
all-HOLD run, two strategies selling one position, a symbol without a verdict, and HALT while orders wait."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg2
import pytest

from tests.dags.bars import steady_decline
from tests.dags.scheduler_stack import SchedulerStack

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(1200)]  # the stack starts in the first test
SYMBOLS = ["AAPL", "MSFT", "JPM", "NVDA"]
VERIFIED = ["AAPL", "MSFT", "JPM"]  # NVDA gets no quality verdict for the data session (a stopped quality run)
LIMITS = "risk: {max_order_notional: 2000, max_position_notional: 5000, price_collar_pct: 0.2}"  # bars rewritten below
SELL_ALL = "risk: {max_order_notional: 5000, max_position_notional: 5000, price_collar_pct: 0.2}"  # 8 JPM in one
# The bars are rewritten into a steady decline (RSI 0): the RSI strategies get a BUY of confidence 1 for every
# symbol; the SMA crossover sees no cross: HOLD.
# sched_reject's limit is 5 % through the market: IBKR asks o163 (price far from the market), which this stack does
# not accept (IBKR_ACCEPTED_QUESTIONS below), so the order is rejected with the question's text.
STRATEGIES = f"""
version: 1
strategies:
  - {{id: 31, name: sched_buy, symbols: [AAPL, MSFT], schedule: "@daily", mode: paper, {LIMITS},
      signal: {{model: rsi_mean_reversion, oversold: 30, overbought: 70, full_confidence_distance: 15}}}}
  - {{id: 32, name: sched_halt, symbols: [AAPL], schedule: "@daily", mode: paper, {LIMITS},
      signal: {{model: rsi_mean_reversion, oversold: 30, overbought: 70, full_confidence_distance: 15}}}}
  - {{id: 33, name: sched_reject, symbols: [MSFT], schedule: "@daily", mode: paper,
      risk: {{max_order_notional: 2000, max_position_notional: 5000, price_collar_pct: 0.2, limit_offset_pct: 0.05}},
      signal: {{model: rsi_mean_reversion, oversold: 30, overbought: 70, full_confidence_distance: 15}}}}
  - {{id: 35, name: sched_sell_a, symbols: [JPM], schedule: "@daily", mode: paper, {SELL_ALL},
      signal: {{model: rsi_mean_reversion, oversold: 30, overbought: 70, full_confidence_distance: 15}}}}
  - {{id: 36, name: sched_sell_b, symbols: [JPM], schedule: "@daily", mode: paper, {SELL_ALL},
      signal: {{model: rsi_mean_reversion, oversold: 30, overbought: 70, full_confidence_distance: 15}}}}
  - {{id: 37, name: sched_stale, symbols: [NVDA], schedule: "@daily", mode: paper, {LIMITS},
      signal: {{model: rsi_mean_reversion, oversold: 30, overbought: 70, full_confidence_distance: 15}}}}
  - {{id: 34, name: sched_hold, symbols: [AAPL, MSFT], schedule: "@daily", mode: paper, {LIMITS},
      signal: {{model: sma_crossover, fast: sma_20, slow: sma_50, full_confidence_atr: 0.25}}}}
"""
TRADE = "ibkr_trading_strategy"
PAPER = {"dry_run": False, "mode": "paper", "ignore_market_hours": False}


def _rows(dsn: str, sql: str, args: tuple = ()) -> list[tuple]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else []


def _admin_db(admin_url: str, sql: str) -> None:
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    try:
        conn.cursor().execute(sql)
    finally:
        conn.close()


class World:
    """The stack and what the assertions read: the simulator's book, the ledger, the alerts, MLflow."""

    def __init__(self, stack: SchedulerStack, sim: Any, dsn: str, session: Any, mlflow_uri: str) -> None:
        self.stack, self.sim, self.dsn, self.session, self.mlflow_uri = stack, sim, dsn, session, mlflow_uri

    def orders(self, strategy_id: int) -> Counter[str]:
        """Orders in the simulator's book per symbol, for this strategy's decisions of the session."""
        from include.execution.models import make_intent_id

        ids = {make_intent_id(strategy_id, s, self.session, "paper"): s for s in SYMBOLS}
        book = httpx.get(f"{self.sim.admin_url}/orders", timeout=10).json()["orders"]
        return Counter(ids[o["cOID"]] for o in book if o.get("cOID") in ids)

    def alerts(self, event: str) -> list[dict[str, Any]]:
        rows = _rows(self.dsn, "SELECT details FROM ops.alerts WHERE event = %s ORDER BY id", (event,))
        return [r[0] for r in rows]

    def mlflow_status(self, dag_id: str, run_id: str) -> str:
        import mlflow

        client = mlflow.MlflowClient(self.mlflow_uri)
        experiments = [e.experiment_id for e in client.search_experiments()]
        (run,) = client.search_runs(experiments, filter_string=f"tags.run_id = '{run_id}' and tags.dag_id = '{dag_id}'")
        return run.info.status


@pytest.fixture(scope="module")
def world(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from include.marketdata import db
    from include.marketdata.calendar import MarketCalendar
    from include.risk.state_store import ensure_schema as state_schema
    from scripts.devstack import gateway_connection_json
    from sim.ibkr.config import SimulatorConfig
    from sim.ibkr.server import SimulatorServer
    from sim.synthetic import build_mart, load_simulator_bars
    from sim.threaded_server import ThreadedServer
    from tests.dags.webhook import receiver_app

    work = tmp_path_factory.mktemp("scheduler")
    tag = uuid.uuid4().hex[:8]
    market_name, meta_name = f"sched_market_{tag}", f"sched_airflow_{tag}"
    for name in (market_name, meta_name):
        _admin_db(pg_admin_url, f'CREATE DATABASE "{name}"')
    base = pg_admin_url.rpartition("/")[0]
    dsn, metadata_url = f"{base}/{market_name}", f"{base}/{meta_name}"
    calendar = MarketCalendar()
    session = calendar.next_session(datetime.now(UTC).date())
    at = calendar.session(session).open + timedelta(hours=1)
    last = calendar.previous_session(session)
    load_simulator_bars(dsn, SYMBOLS, 260, start=calendar.sessions_back(last, 259))
    steady_decline(dsn)
    # JPM rises steadily instead (RSI 100): the two sched_sell strategies both want to SELL the 8 shares held.
    _rows(dsn, """UPDATE raw.daily_bars b SET close = k.c * (1 - 0.002 * k.back), open = k.c * (0.999 - 0.002 * k.back),
                      high = k.c * (1.001 - 0.002 * k.back), low = k.c * (0.998 - 0.002 * k.back)
                  FROM (SELECT session_date, count(*) OVER (ORDER BY session_date DESC) - 1 AS back,
                               first_value(close) OVER (ORDER BY session_date DESC) AS c
                        FROM raw.daily_bars WHERE symbol = 'JPM') k
                  WHERE b.symbol = 'JPM' AND b.session_date = k.session_date""")
    build_mart(dsn, work / "dbt-target", select="+fct_latest_features")
    with db.connection(dsn) as conn:
        from include.quality.verdicts import ensure_schema

        ensure_schema(conn)
        state_schema(conn)
    # The quality gate's verdict for the last completed session (GX itself is tested in tests/quality).
    _rows(dsn, """INSERT INTO quality.symbol_verdicts (run_key, symbol, verdict, reasons, range_start, range_end,
                      bars, last_session, failed_checks, warned_checks)
                  SELECT 'scheduler-test', s, 'pass', '[]', %s, %s, 260, %s, 0, 0 FROM unnest(%s::text[]) s""",
          (calendar.sessions_back(last, 59), last, last, VERIFIED))
    (work / "strategies.yaml").write_text(STRATEGIES)
    mlflow_uri = f"sqlite:///{work / 'mlflow.db'}"
    with SimulatorServer(SimulatorConfig(fill_mode="immediate")) as sim, ThreadedServer(receiver_app()) as hooks:
        httpx.post(f"{sim.admin_url}/clock", json={"now": at.isoformat(), "running": True}).raise_for_status()
        httpx.post(f"{sim.admin_url}/positions", json={"symbol": "JPM", "qty": 8, "avg_cost": 150}).raise_for_status()
        env = {
            "MARKET_DB_URL": dsn, "AIRFLOW_CONN_MARKET_DB": dsn, "IBKR_GATEWAY_URL": sim.base_url,
            "AIRFLOW_CONN_IBKR_DEFAULT": gateway_connection_json(sim.base_url),
            "IBKR_ACCEPTED_QUESTIONS": "o354,o383,o451",
            "MLFLOW_TRACKING_URI": mlflow_uri, "STRATEGIES_FILE": str(work / "strategies.yaml"),
            "QUALITY_REPORTS_DIR": str(work / "quality"), "TRADING_CLOCK": at.isoformat(),
            "AIRFLOW_CONN_ALERTS_WEBHOOK": json.dumps({"conn_type": "http", "host": f"{hooks.root_url}/hook"}),
            "GX_ANALYTICS_ENABLED": "false", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        stack = SchedulerStack(work, metadata_url, env)
        try:
            stack.start()
            for dag_id in (TRADE, "strategy_sched_buy", "strategy_sched_halt", "strategy_sched_reject",
                           "strategy_sched_sell_a", "strategy_sched_sell_b", "strategy_sched_stale",
                           "strategy_sched_hold"):
                stack.dag_ready(dag_id)
            yield World(stack, sim, dsn, session, mlflow_uri)
        finally:
            stack.stop()
            for name in (market_name, meta_name):
                _admin_db(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def first_wave(world: World) -> dict[str, tuple[str, str]]:
    """Five runs at once: ibkr_trading_strategy twice and the strategy's own DAG on sched_buy, a rejected order
    (sched_reject: a question off the allow-list) and an all-HOLD paper run."""
    stack = world.stack
    runs = {
        "manual_1": (TRADE, stack.trigger(TRADE, {"strategy_id": 31, **PAPER}, "manual__sched_1")),
        "manual_2": (TRADE, stack.trigger(TRADE, {"strategy_id": 31, **PAPER}, "manual__sched_2")),
        "own_dag": ("strategy_sched_buy", stack.trigger("strategy_sched_buy", {}, "manual__sched_own")),
        "reject": ("strategy_sched_reject", stack.trigger("strategy_sched_reject", {}, "manual__sched_reject")),
        "hold": ("strategy_sched_hold", stack.trigger("strategy_sched_hold", {}, "manual__sched_hold")),
        "sell_a": ("strategy_sched_sell_a", stack.trigger("strategy_sched_sell_a", {}, "manual__sched_sell_a")),
        "sell_b": ("strategy_sched_sell_b", stack.trigger("strategy_sched_sell_b", {}, "manual__sched_sell_b")),
        "stale": ("strategy_sched_stale", stack.trigger("strategy_sched_stale", {}, "manual__sched_stale")),
    }
    return {name: (dag_id, run_id, stack.wait_run(dag_id, run_id, timeout=420)) for name, (dag_id, run_id) in
            runs.items()}


def test_concurrent_runs_and_both_dags_send_one_order_per_symbol(world, first_wave):
    for name in ("manual_1", "manual_2", "own_dag"):
        dag_id, run_id, state = first_wave[name]
        assert state == "success", (name, world.stack.task_states(dag_id, run_id))
    assert world.orders(31) == {"AAPL": 1, "MSFT": 1}
    decided_by = _rows(world.dsn, "SELECT DISTINCT dag_id, run_id FROM trading.order_intents WHERE strategy_id = '31'")
    assert len(decided_by) == 1  # the first run to claim the session decided; the others found it

    # A re-trigger of the same session after the fills: nothing new.
    run_id = world.stack.trigger(TRADE, {"strategy_id": 31, **PAPER}, "manual__sched_3")
    assert world.stack.wait_run(TRADE, run_id) == "success"
    assert world.orders(31) == {"AAPL": 1, "MSFT": 1}


def test_a_rejection_fails_loudly_on_every_attempt_and_alerts_once(world, first_wave):
    dag_id, run_id, state = first_wave["reject"]
    assert state == "failed"
    tasks = world.stack.task_states(dag_id, run_id)
    assert tasks["place_orders"] == "failed" and tasks["end_mlflow_run"] == "success", tasks
    assert world.mlflow_status(dag_id, run_id) == "FAILED"
    ((status, error),) = _rows(world.dsn,
                               "SELECT status, last_error FROM trading.order_intents WHERE strategy_id = '33'")
    assert status == "rejected" and "o163" in error
    assert world.orders(33) == {}  # the question was declined: nothing placed
    assert len(world.alerts("order_rejected")) == 1

    world.stack.clear(dag_id, run_id, ["place_orders"])  # a clear: still the rejection, no order, no second alert
    assert world.stack.wait_run(dag_id, run_id) == "failed"
    assert world.stack.task_state(dag_id, run_id, "place_orders") == "failed"
    assert world.orders(33) == {} and len(world.alerts("order_rejected")) == 1


def test_an_all_hold_paper_run_succeeds_with_no_order(world, first_wave):
    dag_id, run_id, state = first_wave["hold"]
    assert state == "success", world.stack.task_states(dag_id, run_id)
    assert world.orders(34) == {}
    assert _rows(world.dsn, "SELECT count(*) FROM trading.order_intents WHERE strategy_id = '34'") == [(0,)]


def test_two_strategies_selling_one_long_position_sell_it_once(world, first_wave):
    for name in ("sell_a", "sell_b"):
        dag_id, run_id, state = first_wave[name]
        assert state == "success", (name, world.stack.task_states(dag_id, run_id))
    from include.execution.models import make_intent_id

    ids = {make_intent_id(sid, "JPM", world.session, "paper") for sid in (35, 36)}
    book = httpx.get(f"{world.sim.admin_url}/orders", timeout=10).json()["orders"]
    sells = [o for o in book if o.get("cOID") in ids]
    # The first SELL closes the 8 shares; the other strategy finds nothing left (held - working SELLs): no short.
    # (When both were approved by risk at the same moment, the re-check at submission refuses the second.)
    assert [float(o["quantity"]) for o in sells] == [8.0], sells
    refused = _rows(world.dsn, "SELECT status, last_error FROM trading.order_intents WHERE symbol = 'JPM'"
                               " AND status NOT IN ('filled', 'acknowledged', 'submitted')")
    assert all(status == "vetoed" and "short" in error for status, error in refused), refused


def test_a_symbol_without_a_verdict_for_the_session_is_not_traded(world, first_wave):
    dag_id, run_id, state = first_wave["stale"]
    assert state == "success", world.stack.task_states(dag_id, run_id)  # a veto, not a failure: nothing to fix
    assert world.orders(37) == {}
    assert _rows(world.dsn, "SELECT count(*) FROM trading.order_intents WHERE strategy_id = '37'") == [(0,)]


def test_halt_set_while_place_orders_waits_for_its_pool_sends_nothing(world, first_wave):
    from include.risk.state_store import change_state

    stack = world.stack
    stack.set_pool("ibkr_orders", 0)  # place_orders cannot start: risk has approved, the order waits
    try:
        run_id = stack.trigger("strategy_sched_halt", {}, "manual__sched_halt")
        stack.wait("assess_risk", lambda: stack.task_state("strategy_sched_halt", run_id, "assess_risk") == "success",
                   300, 2)
        change_state(world.dsn, "HALTED", "test: kill switch while orders wait", "test")
    finally:
        stack.set_pool("ibkr_orders", 1)
    try:
        assert stack.wait_run("strategy_sched_halt", run_id) == "success"
        assert world.orders(32) == {}
        ((status, error),) = _rows(world.dsn,
                                   "SELECT status, last_error FROM trading.order_intents WHERE strategy_id = '32'")
        assert status == "vetoed" and "HALTED" in error
        assert [a["intent_id"] for a in world.alerts("order_vetoed") if a["strategy"] == "sched_halt"] == [
            _rows(world.dsn, "SELECT intent_id FROM trading.order_intents WHERE strategy_id = '32'")[0][0]]
    finally:
        change_state(world.dsn, "ACTIVE", "test: resume", "test")
