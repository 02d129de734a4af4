"""Kill switch on real PostgreSQL: idempotent DDL, state changes with history, the command, and its effect."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import psycopg2
import pytest

from include.risk import RiskLimits, assess
from include.risk.kill_switch import default_actor, set_trading_state
from include.risk.models import TradingState
from include.risk.state_store import change_state, read_state, state_history
from tests.risk.support import context_kwargs, signal

REPO = Path(__file__).resolve().parents[2]


def test_fresh_database_starts_active_with_one_history_row(clean_db):
    record = read_state(clean_db)
    assert (record.state, record.changed_by) == (TradingState.ACTIVE, "system")
    read_state(clean_db)  # DDL again: no error, no second seed row
    (seed,) = state_history(clean_db)
    assert (seed.state, seed.previous_state) == (TradingState.ACTIVE, None)


def test_changes_are_recorded_with_who_when_why(clean_db):
    halted = set_trading_state(clean_db, "halt", "broker outage", "alice")
    assert (halted.state, halted.previous_state, halted.reason, halted.changed_by) == (
        TradingState.HALTED, TradingState.ACTIVE, "broker outage", "alice")
    set_trading_state(clean_db, "reduce", "outage over, unwinding", "bob")
    resumed = set_trading_state(clean_db, "resume", "all clear", "alice")
    assert read_state(clean_db).state is TradingState.ACTIVE
    history = state_history(clean_db)
    assert [(h.state.value, h.previous_state and h.previous_state.value, h.changed_by) for h in history] == [
        ("ACTIVE", "REDUCING", "alice"), ("REDUCING", "HALTED", "bob"), ("HALTED", "ACTIVE", "alice"),
        ("ACTIVE", None, "system")]
    assert history[0].changed_at == resumed.changed_at
    assert history[0].changed_at >= history[1].changed_at >= history[2].changed_at


def test_reason_and_actor_are_required(clean_db):
    with pytest.raises(ValueError, match="a reason is required"):
        change_state(clean_db, "HALTED", "  ", "alice")
    with pytest.raises(ValueError, match="changed_by is required"):
        change_state(clean_db, "HALTED", "why", "")
    with pytest.raises(ValueError):
        change_state(clean_db, "PAUSED", "why", "alice")
    read_state(clean_db)
    # The table refuses bad states too.
    with psycopg2.connect(clean_db) as conn, conn.cursor() as cur, pytest.raises(psycopg2.errors.CheckViolation):
        cur.execute("UPDATE trading.trading_state SET state = 'PAUSED'")
    conn.close()
    assert read_state(clean_db).state is TradingState.ACTIVE


def test_schema_dropped_under_us_is_recreated(clean_db):
    set_trading_state(clean_db, "halt", "test", "alice")
    with psycopg2.connect(clean_db) as conn, conn.cursor() as cur:
        cur.execute("DROP SCHEMA trading CASCADE")
    conn.close()
    assert read_state(clean_db).state is TradingState.ACTIVE  # recreated, not cached as "already there"


def test_concurrent_first_use_does_not_race(clean_db):
    errors: list[BaseException] = []

    def first_use() -> None:
        try:
            read_state(clean_db)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(state_history(clean_db)) == 1


def test_halted_state_from_the_database_vetoes_every_order(clean_db):
    set_trading_state(clean_db, "halt", "risk desk", "carol")
    state = read_state(clean_db).state
    report = assess([signal("TSLA"), signal("NVDA", "SELL", price=120.0)], limits=RiskLimits(),
                    **context_kwargs(trading_state=state, positions={"NVDA": (5, 100.0)}))
    assert all(d.status == "vetoed" and d.vetoes[0].reason == "trading state HALTED: no orders"
               for d in report.decisions)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "include.risk.kill_switch", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=60)


def test_command_line(clean_db):
    done = _cli("halt", "--reason", "manual stop", "--by", "ops", "--db-url", clean_db)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("HALTED (was ACTIVE) since ") and done.stdout.rstrip().endswith("by ops: manual stop")
    status = _cli("status", "--db-url", clean_db, "--json", "--history", "5")
    records = json.loads(status.stdout)
    assert records[0]["state"] == "HALTED" and [r["state"] for r in records[1:]] == ["HALTED", "ACTIVE"]
    missing = _cli("resume", "--db-url", clean_db)
    assert missing.returncode == 2 and "resume needs --reason" in missing.stderr
    assert read_state(clean_db).state is TradingState.HALTED
    resumed = _cli("resume", "--reason", "ok", "--db-url", clean_db)
    assert resumed.returncode == 0, resumed.stderr
    assert state_history(clean_db, 1)[0].changed_by == default_actor()  # no --by: user@host
    assert read_state(clean_db).state is TradingState.ACTIVE


def test_command_line_reports_a_bad_database():
    bad = _cli("status", "--db-url", "postgresql://nobody@127.0.0.1:1/none")
    assert bad.returncode == 1 and bad.stderr.startswith("kill_switch: OperationalError")
