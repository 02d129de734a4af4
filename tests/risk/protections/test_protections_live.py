"""The live protections: the order ledger replayed into round trips and an equity curve (closes from the mart),
the triggers recorded once in trading.protection_events and alerted, and the risk engine vetoing entries."""

from datetime import UTC, date, datetime

import psycopg2
import pytest

from include.alerts.events import protection_alerts
from include.backtest.engine import apply_overrides
from include.config import get_strategy
from include.execution.ledger import ensure_schema, strategy_fills
from include.marketdata import db
from include.risk import assess
from include.risk.checks import DEFAULT_CHECKS, ProtectionGate
from include.risk.protections import evaluate_live

DAYS = (date(2025, 3, 3), date(2025, 3, 4), date(2025, 3, 5))  # XNYS sessions (Mon-Wed)


def _fill(cur, n, symbol, side, qty, price, day, strategy="1", mode="paper"):
    intent = f"oi{n:020d}"
    cur.execute(
        "INSERT INTO trading.order_intents (intent_id, dag_id, run_id, try_number, strategy_id, symbol, side, quantity,"
        " order_type, tif, limit_price, mode, status, coid) VALUES (%s, 'd', %s, 1, %s, %s, %s, %s, 'LMT', 'DAY', %s,"
        " %s, 'filled', %s)", (intent, f"r{n}", strategy, symbol, side, qty, price, mode, intent))
    cur.execute("INSERT INTO trading.order_events (intent_id, event_at, kind, status, filled_quantity, avg_price,"
                " execution_id) VALUES (%s, %s, 'fill', 'filled', %s, %s, %s)",
                (intent, datetime.combine(day, datetime.min.time(), UTC).replace(hour=15), qty, price, f"x{n}"))


@pytest.fixture
def ledger(clean_db):
    with db.connection(clean_db) as conn:
        ensure_schema(conn)
    with psycopg2.connect(clean_db) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA analytics_marts; CREATE TABLE analytics_marts.fct_daily_indicators"
                    " (symbol text, session_date date, close float8)")
        for day, x_close in zip(DAYS, (100.0, 95.0, 85.0), strict=True):
            cur.execute("INSERT INTO analytics_marts.fct_daily_indicators VALUES ('X', %s, %s), ('Y', %s, 50)",
                        (day, x_close, day))
        _fill(cur, 1, "X", "BUY", 100, 100.0, DAYS[0])  # held: 10,000 -> 8,500 at the last close
        n = 2
        for day in DAYS:  # three losing round trips in Y (-10 each)
            _fill(cur, n, "Y", "BUY", 10, 51.0, day)
            _fill(cur, n + 1, "Y", "SELL", 10, 50.0, day)
            n += 2
        _fill(cur, 50, "X", "BUY", 100, 1.0, DAYS[0], strategy="2")  # other strategies and modes are ignored
        _fill(cur, 51, "X", "BUY", 100, 1.0, DAYS[0], mode="live")
    return clean_db


def _strategy(**overrides):
    return apply_overrides(get_strategy(1), {
        "protections.capital": 20000, "protections.max_drawdown": {"max_drawdown_pct": 0.05},
        "protections.loss_streak": {"max_losing_trades": 3, "window_sessions": 5, "cooldown_sessions": 2},
        **overrides})  # fmt: skip


def test_ledger_triggers_are_recorded_once_alerted_and_veto_entries(ledger, monkeypatch):
    alerts = []
    monkeypatch.setattr("include.alerts.send_alert", lambda event, summary, **kw: alerts.append((event, summary, kw)))
    fills = strategy_fills(db.connect(ledger), 1, "paper")
    assert len(fills) == 7
    live = evaluate_live(ledger, _strategy(), fills, mode="paper", dag_id="d", run_id="r", today=DAYS[2])
    protection_alerts(live.new, strategy=_strategy(), mode="paper", dag_id="d", run_id="r")
    status = live.status
    # capital 20,000 (the session before the first fill); Y's three trades -30, X 10,000 -> 8,500: 18,470 = 7.65 %
    assert status.reducing and status.equity == pytest.approx(18470.0) and status.peak == pytest.approx(20000.0)
    assert set(status.cooldowns) == {"Y"}
    with psycopg2.connect(ledger) as conn, conn.cursor() as cur:
        cur.execute("SELECT strategy_id, mode, protection, symbol, session_date, run_id FROM trading.protection_events"
                    " ORDER BY protection")
        assert cur.fetchall() == [("1", "paper", "loss_streak", "Y", DAYS[2], "r"),
                                  ("1", "paper", "max_drawdown", "", DAYS[2], "r")]
    assert sorted((e, s) for e, s, _ in alerts) == [
        ("protection_triggered", "strategy sma_crossover_20_50: REDUCING (exits only)"),
        ("protection_triggered", "strategy sma_crossover_20_50: cooldown Y")]
    again = evaluate_live(ledger, _strategy(), fills, mode="paper", dag_id="d", run_id="r2", today=DAYS[2])
    protection_alerts(again.new, strategy=_strategy(), mode="paper", dag_id="d", run_id="r2")
    assert again.new == [] and len(alerts) == 2  # the same session's triggers are not recorded or alerted twice

    signals = [{"symbol": s, "action": a, "confidence": 0.9, "rationale": "t", "strategy_id": 1, "model": "t",
                "price_reference": 85.0} for s, a in (("X", "SELL"), ("Z", "BUY"))]
    report = assess(signals, limits=_strategy().risk, mode="paper", account_id="DU1", trading_state="ACTIVE",
                    positions={"X": 100}, last_prices={"X": 85.0, "Z": 85.0}, orders_today=0,
                    verdicts={"X": "pass", "Z": "pass"}, market_open=True, net_liquidation=100000,
                    gross_position_value=8500, checks=(*DEFAULT_CHECKS, ProtectionGate(status)))
    by_symbol = {d.symbol: d for d in report.decisions}
    assert by_symbol["X"].approved  # the exit passes in REDUCING
    assert not by_symbol["Z"].approved
    assert [v.check for v in by_symbol["Z"].vetoes] == ["protections"]


def test_below_the_thresholds_nothing_triggers(ledger):
    fills = strategy_fills(db.connect(ledger), 1, "paper")
    status = evaluate_live(ledger, _strategy(**{"protections.max_drawdown": {"max_drawdown_pct": 0.1},
                                                "protections.loss_streak.max_losing_trades": 4}),
                           fills, mode="paper", today=DAYS[2]).status
    assert not status.reducing and status.cooldowns == {} and status.drawdown == pytest.approx(1 - 18470 / 20000)
    with psycopg2.connect(ledger) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM trading.protection_events")
        assert cur.fetchone() == (0,)
    assert evaluate_live(ledger, get_strategy(4), fills, mode="paper") is None  # no protections configured
