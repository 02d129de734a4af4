"""``SubmissionChecks`` in the claiming transaction, against the simulator and PostgreSQL: a second SELL of one long
position, a stale or missing quote, a missing verdict and HALT are refused (``vetoed``, nothing sent)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import psycopg2
import pytest

from include.execution import execute_intents
from include.marketdata.calendar import MarketCalendar
from include.risk.limits import RiskLimits
from include.trading.context import TradingRun
from include.trading.submission import SubmissionChecks
from tests.execution.conftest import client as client  # fixture
from tests.execution.conftest import sim as sim  # fixture
from tests.execution.support import admin, book, fault, plan, run_ctx

SESSION = date(2026, 1, 6)  # a Tuesday; the quality verdict is for Monday's session
DATA_SESSION = date(2026, 1, 5)
LIMITS = RiskLimits(price_collar_pct=0.2)


@pytest.fixture
def checks(clean_db, sim, client):
    """An open market one hour into SESSION (ours and the simulator's clock), a pass verdict for TSLA and NVDA."""
    at = MarketCalendar().session(SESSION).open + timedelta(hours=1)
    admin(sim, "/clock", {"now": at.isoformat(), "running": True})
    from include.quality.verdicts import ensure_schema
    from include.risk.state_store import ensure_schema as state_schema

    conn = psycopg2.connect(clean_db)
    try:
        ensure_schema(conn)
        state_schema(conn)
        with conn, conn.cursor() as cur:
            cur.execute("""INSERT INTO quality.symbol_verdicts (run_key, symbol, verdict, reasons, range_start,
                               range_end, bars, last_session, failed_checks, warned_checks)
                           SELECT 'test', s, 'pass', '[]', %s, %s, 60, %s, 0, 0 FROM unnest(%s::text[]) s""",
                        (DATA_SESSION - timedelta(days=90), DATA_SESSION, DATA_SESSION, ["TSLA", "NVDA"]))
    finally:
        conn.close()
    run = TradingRun(dag_id="d", run_id="r", strategy_id=1, strategy="s", mode="paper", symbols=("TSLA", "NVDA"),
                     mlflow_run_id="-", started_at=at, session=SESSION, data_session=DATA_SESSION)
    started = datetime.now(at.tzinfo)

    def gate(now_offset: timedelta = timedelta(0)) -> SubmissionChecks:
        return SubmissionChecks(run, LIMITS, now=lambda: at + (datetime.now(at.tzinfo) - started) + now_offset,
                                broker=client)

    return gate


def _last(client, symbol):
    (snap,) = client.snapshot([client.resolve_contract(symbol)], ("31",), attempts=5)
    return snap.last


def test_a_second_sell_of_one_long_position_is_refused(clean_db, sim, client, checks):
    admin(sim, "/positions", {"symbol": "TSLA", "qty": 8, "avg_cost": 200})
    far = round(_last(client, "TSLA") * 1.1, 2)  # a SELL limit 10 % above the market: it stays working
    first = execute_intents([plan("TSLA", "SELL", qty=8, order_type="LMT", limit=far, session=SESSION,
                                  position_before=8)], run_ctx("sell-1"), dsn=clean_db, broker=client, gate=checks())
    assert len(first.submitted) == 1
    # Another strategy sells the same shares in the same session: the working SELL already covers them.
    second = execute_intents([plan("TSLA", "SELL", qty=8, order_type="LMT", limit=far, session=SESSION,
                                   strategy_id=2, position_before=8)], run_ctx("sell-2"), dsn=clean_db,
                             broker=client, gate=checks())
    assert second.submitted == [] and "would open a short" in next(iter(second.vetoed.values()))
    assert len(book(sim)["orders"]) == 1


def test_stale_missing_quotes_and_a_missing_verdict_are_refused(clean_db, sim, client, checks):
    stale = execute_intents([plan("TSLA", session=SESSION)], run_ctx("q-1"), dsn=clean_db, broker=client,
                            gate=checks(now_offset=timedelta(minutes=10)))  # the quote is 10 min old by then
    assert "old (max_quote_age_seconds 120)" in next(iter(stale.vetoed.values()))
    fault(sim, path=r"^/iserver/marketdata/snapshot", status=200, times=-1,
          body=[{"conid": client.resolve_contract("NVDA").conid, "_updated": 0}])
    missing = execute_intents([plan("NVDA", session=SESSION)], run_ctx("q-2"), dsn=clean_db, broker=client,
                              gate=checks())
    assert next(iter(missing.vetoed.values())).startswith("no quote for NVDA at submission")  # no last price
    unverified = execute_intents([plan("AAPL", session=SESSION)], run_ctx("q-3"), dsn=clean_db, broker=client,
                                 gate=checks())
    assert "no data-quality verdict for session 2026-01-05" in next(iter(unverified.vetoed.values()))
    assert book(sim)["orders"] == []


def test_halt_refuses_and_the_next_run_after_resume_sends_once(clean_db, sim, client, checks):
    from include.risk.state_store import change_state

    change_state(clean_db, "HALTED", "test", "test")
    halted = execute_intents([plan("TSLA", session=SESSION)], run_ctx("h-1"), dsn=clean_db, broker=client,
                             gate=checks())
    assert "HALTED" in next(iter(halted.vetoed.values())) and book(sim)["orders"] == []
    change_state(clean_db, "ACTIVE", "test", "test")
    resumed = execute_intents([plan("TSLA", session=SESSION)], run_ctx("h-2"), dsn=clean_db, broker=client,
                              gate=checks())
    assert len(resumed.submitted) == 1 and len(book(sim)["orders"]) == 1
