"""The portfolio dbt models (tag:portfolio) equal an independent Python calculation on the same
raw rows: average-cost realised P&L per execution and symbol, unrealised P&L, exposure per snapshot, daily equity,
running peak and drawdowns."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from include.marketdata.db import connection
from include.portfolio.loaders import ensure_schema
from tests.execution.support import rows

NY = ZoneInfo("America/New_York")
SYMBOLS = ("AAPL", "MSFT", "NVDA")


def _data(seed: int = 7):
    """Random executions (buys, sells, flips) over four days and six snapshots with marks after them."""
    rng = random.Random(seed)
    start = datetime(2025, 3, 3, 15, tzinfo=UTC)
    trades, snaps = [], []
    for i in range(40):
        trades.append((f"e{i:03d}", rng.choice(SYMBOLS), rng.choice(("BUY", "SELL")), float(rng.randint(1, 20)),
                       round(rng.uniform(50, 150), 2), round(rng.uniform(0, 2), 2), start + timedelta(hours=3 * i)))
    for k, at in enumerate(start + timedelta(hours=h) for h in (2, 20, 23, 50, 70, 118)):
        snaps.append((f"dag/run-{k}", at, {s: round(rng.uniform(50, 150), 2) for s in SYMBOLS},
                      round(rng.uniform(900_000, 1_100_000), 2)))
    return trades, snaps


def _avg_cost(trades):
    """{execution_id: (position, avg_cost, realised)} and the book per symbol after each execution."""
    book: dict[str, tuple[float, float]] = {}
    out = {}
    for eid, sym, side, qty, price, _fee, _at in sorted(trades, key=lambda t: (t[6], t[0])):
        pos, avg = book.get(sym, (0.0, 0.0))
        signed = qty if side == "BUY" else -qty
        realised = 0.0
        if pos == 0 or (pos > 0) == (signed > 0):
            avg = (avg * abs(pos) + price * qty) / (abs(pos) + qty)
        else:
            closed = min(qty, abs(pos))
            realised = closed * (price - avg) * (1 if pos > 0 else -1)
            if qty > abs(pos):
                avg = price
        pos += signed
        if abs(pos) < 1e-9:
            pos, avg = 0.0, 0.0
        book[sym] = (pos, avg)
        out[eid] = (pos, avg, realised)
    return out


def _book_at(trades, costed, at):
    book = {}
    for t in sorted(trades, key=lambda t: (t[6], t[0])):
        if t[6] <= at:
            book[t[1]] = costed[t[0]][:2]
    return {s: b for s, b in book.items() if b[0]}


def _load(dsn, trades, snaps):
    with connection(dsn) as conn:
        ensure_schema(conn)
        costed = _avg_cost(trades)
        with conn, conn.cursor() as cur:
            for eid, sym, side, qty, price, fee, at in trades:
                cur.execute("INSERT INTO raw.broker_trades (execution_id, account_id, symbol, side, quantity, price,"
                            " commission, trade_at, coid, first_run_key) VALUES (%s,'DU1',%s,%s,%s,%s,%s,%s,NULL,'t')",
                            (eid, sym, side, qty, price, fee, at))  # fmt: skip
            for run_key, at, marks, equity in snaps:
                cur.execute("INSERT INTO raw.account_summary (run_key, snapshot_at, account_id, net_liquidation,"
                            " total_cash, summary_values) VALUES (%s, %s, 'DU1', %s, 0, '{}')", (run_key, at, equity))
                for conid, (sym, (qty, avg)) in enumerate(sorted(_book_at(trades, costed, at).items())):
                    cur.execute("INSERT INTO raw.portfolio_positions (run_key, snapshot_at, account_id, conid,"
                                " symbol, quantity, market_price, market_value, avg_cost)"
                                " VALUES (%s,%s,'DU1',%s,%s,%s,%s,%s,%s)",
                                (run_key, at, conid, sym, qty, marks[sym], qty * marks[sym], avg))  # fmt: skip
    return costed


def test_pnl_exposure_equity_and_drawdown_equal_python(clean_db, dbt):
    trades, snaps = _data()
    costed = _load(clean_db, trades, snaps)
    ok, results = dbt("build", "--select", "tag:portfolio")
    assert ok, [(r.node.name, r.status, r.message) for r in results if r.status not in ("success", "pass")]

    got = {e: (p, a, r) for e, p, a, r in rows(
        clean_db, "SELECT execution_id, position_after, avg_cost_after, realized_pnl"
                  " FROM analytics_intermediate.int_portfolio__trades_costed")}
    assert got.keys() == costed.keys()
    for eid, expected in costed.items():
        assert got[eid] == pytest.approx(expected, abs=1e-9), eid
    assert any(r != 0 for _, _, r in costed.values()) and any(p < 0 for p, _, _ in costed.values())  # flips, shorts

    _, last_at, last_marks, _ = snaps[-1]
    book = _book_at(trades, costed, last_at)
    pnl = {s: (q, u, r, c) for s, q, u, r, c in rows(
        clean_db, "SELECT symbol, quantity, unrealized_pnl, realized_pnl, commissions"
                  " FROM analytics_marts.fct_portfolio_pnl")}
    for sym in SYMBOLS:
        qty, avg = book.get(sym, (0.0, 0.0))
        realised = sum(costed[t[0]][2] for t in trades if t[1] == sym)
        fees = sum(t[5] for t in trades if t[1] == sym)
        assert pnl[sym] == pytest.approx((qty, qty * (last_marks[sym] - avg), realised - fees, fees), abs=1e-6), sym

    exposure = {k: v for k, *v in rows(
        clean_db, "SELECT run_key, long_exposure, short_exposure, gross_exposure, net_exposure, unrealized_pnl,"
                  " realized_pnl, total_pnl, gross_leverage FROM analytics_marts.fct_portfolio_exposure")}
    for run_key, at, marks, equity in snaps:
        held = _book_at(trades, costed, at)
        values = [q * marks[s] for s, (q, _) in held.items()]
        long, short = sum(v for v in values if v > 0), -sum(v for v in values if v < 0)
        unrealised = sum(q * (marks[s] - a) for s, (q, a) in held.items())
        realised = sum(costed[t[0]][2] - t[5] for t in trades if t[6] <= at)
        assert exposure[run_key] == pytest.approx(
            [long, short, long + short, long - short, unrealised, realised, unrealised + realised,
             (long + short) / equity], abs=1e-6), run_key

    daily: dict = {}
    for _, at, _, equity in sorted(snaps, key=lambda s: s[1]):
        daily[at.astimezone(NY).date()] = equity  # the day's last snapshot wins
    peak, worst, expected = 0.0, 0.0, []
    for day, equity in sorted(daily.items()):
        peak = max(peak, equity)
        worst = max(worst, (peak - equity) / peak)
        expected.append((day, equity, peak, (peak - equity) / peak, worst))
    got = rows(clean_db, "SELECT equity_date, equity, running_peak, drawdown_pct, max_drawdown_pct"
                         " FROM analytics_marts.fct_daily_equity ORDER BY equity_date")
    assert [g[0] for g in got] == [e[0] for e in expected] and len(got) == 5  # two snapshots share a day
    for g, e in zip(got, expected, strict=True):
        assert g[1:] == pytest.approx(e[1:], abs=1e-9)
    assert expected[-1][4] > 0  # the data has a drawdown

