"""``make chaos``: a bounded, seeded, randomized mix of order-path faults and kills, counted in the simulator's book.

Each round is one exchange session of one strategy: the same approved BUYs go through ``execute_intents`` with the
real ``SubmissionChecks`` gate several times (new runs, retries, two runs at once, runs killed -9 mid-submission),
with gateway faults injected before each (5xx/429/401 before and after acceptance, timeouts, malformed answers, a
question off the allow-list), HALT set before or during the round, and stale inputs (no verdict for the session, a
quote without a last price, a clock past the quotes' age). A last clean run lets the session converge. Counted from
the simulator's order book and the ledger's events: duplicates, orders against HALT, orders on stale data.
``CHAOS_ROUNDS`` (30), ``CHAOS_SEED`` (7), ``BENCH_PG_ADMIN_URL`` as for the other benches.
"""

from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from bench.common import scratch_database, simulator_process
from scripts.devstack import REPO

ROUNDS = int(os.environ.get("CHAOS_ROUNDS", "30"))
SEED = int(os.environ.get("CHAOS_SEED", "7"))
SYMBOLS = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "META", "GOOGL", "SPY", "QQQ", "JPM", "AVGO", "COST"]
STRATEGY = "chaos"
PLACE = r"^/iserver/account/[^/]+/orders$"
FAULTS: list[tuple[str, dict[str, Any]]] = [
    ("500 before acceptance", {"path": PLACE, "method": "POST", "status": 500, "body": {"error": "internal error"}}),
    ("503 after acceptance", {"path": PLACE, "method": "POST", "status": 503, "after": True}),
    ("429 on placement", {"path": PLACE, "method": "POST", "status": 429}),
    ("401 session lost", {"path": PLACE, "method": "POST", "status": 401}),
    ("ack lost (timeout)", {"path": PLACE, "method": "POST", "after": True, "latency_ms": 4000}),
    ("malformed answer", {"path": PLACE, "method": "POST", "malformed": True}),
    ("malformed after acceptance", {"path": PLACE, "method": "POST", "malformed": True, "after": True}),
    ("500 on live orders", {"path": r"^/iserver/account/orders$", "method": "GET", "status": 500}),
    ("malformed live orders", {"path": r"^/iserver/account/orders$", "method": "GET", "malformed": True}),
    ("500 on positions", {"path": r"^/portfolio/[^/]+/positions/", "method": "GET", "status": 500}),
    ("snapshot 503", {"path": r"^/iserver/marketdata/snapshot", "status": 503}),
    ("snapshot timeout", {"path": r"^/iserver/marketdata/snapshot", "latency_ms": 4000}),
    ("401 on auth status", {"path": r"^/iserver/auth/status", "status": 401}),
    ("500 on trades", {"path": r"^/iserver/account/trades", "status": 500}),
]
STALE_KINDS = ("no verdict for the session", "quote without last price", "quotes older than the limit")


@dataclass
class Tally:
    runs: int = 0
    kills: int = 0
    concurrent: int = 0
    loud_failures: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    halted_rounds: int = 0
    stale_rounds: int = 0
    duplicates: int = 0
    orders_against_halt: int = 0
    orders_on_stale: int = 0
    not_converged: list[str] = field(default_factory=list)


# --- the child: one execute_intents run, as place_orders runs it -----------------------------------------------
def _child(raw: str) -> int:
    return run_once(json.loads(raw))


def run_once(args: dict[str, Any]) -> int:
    """One run; 0 when it ended cleanly, 3 when it failed loudly (as place_orders would), with the reason printed."""
    from include.execution import OrderExecutionError, RunContext, execute_intents
    from include.execution.errors import ExecutionError
    from include.ibkr.client import IBKRClient
    from include.ibkr.errors import IBKRError
    from include.risk.limits import RiskLimits
    from include.trading.context import TradingRun
    from include.trading.submission import SubmissionChecks

    session, data_session = date.fromisoformat(args["session"]), date.fromisoformat(args["data_session"])
    started, base = time.monotonic(), datetime.fromisoformat(args["now"])

    def now() -> datetime:  # the simulator's clock, moving on with ours
        return base + timedelta(seconds=time.monotonic() - started)

    run = TradingRun(dag_id="chaos", run_id=args["run_id"], strategy_id=1, strategy=STRATEGY, mode="paper",
                     symbols=tuple(args["symbols"]), mlflow_run_id="-", started_at=now(), session=session,
                     data_session=data_session)
    ctx = RunContext(dag_id="chaos", run_id=args["run_id"], mode="paper", try_number=args["try_number"])
    with IBKRClient(args["api"], timeout=3.0, backoff_initial=0.05, backoff_max=0.2) as client:
        gate = SubmissionChecks(run, RiskLimits(), now=now, broker=client)
        try:
            client.ensure_session()
            execute_intents(_plans(args["symbols"], args["prices"], session), ctx, dsn=args["dsn"], broker=client,
                            gate=gate, settle_interval_s=0.1, lock_timeout_s=60)
        except (OrderExecutionError, ExecutionError, IBKRError) as exc:  # what fails the place_orders task
            print(f"loud: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", file=sys.stderr)
            run_once.last_error = type(exc).__name__  # type: ignore[attr-defined]
            return 3
    return 0


def _plans(symbols: list[str], prices: dict[str, float], session: date) -> list[Any]:
    from include.execution import OrderPlan

    return [OrderPlan(strategy_id=STRATEGY, symbol=s, side="BUY", quantity=1, ref_price=prices[s], order_type="LMT",
                      limit_price=round(prices[s] * 1.005, 2), session_date=session, position_before=0.0)
            for s in symbols]


# --- the parent -----------------------------------------------------------------------------------------------
class Chaos:
    def __init__(self, api: str, admin: str, dsn: str, seed: int) -> None:
        from include.marketdata.calendar import MarketCalendar

        self.api, self.admin, self.dsn = api, admin, dsn
        self.rng = random.Random(seed)
        self.calendar = MarketCalendar()
        self.tally = Tally()
        self.run_seq = 0
        self.contracts: dict[str, Any] = {}
        self.stale_quote_hits = 0

    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        resp = httpx.request(method, f"{self.admin}{path}", json=body, timeout=30)
        resp.raise_for_status()
        return resp.json()

    def _sql(self, sql: str, args: tuple = ()) -> list[tuple]:
        import psycopg2

        with psycopg2.connect(self.dsn) as conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else []

    def setup(self) -> None:
        import psycopg2

        from include.execution.ledger import ensure_schema as ledger_schema
        from include.quality.verdicts import ensure_schema as verdict_schema
        from include.risk.state_store import ensure_schema as state_schema

        conn = psycopg2.connect(self.dsn)
        try:
            ledger_schema(conn)
            verdict_schema(conn)
            state_schema(conn)
        finally:
            conn.close()

    def _spawn(self, args: dict[str, Any]) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "bench.chaos", "--child", json.dumps(args)], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def _finish(self, proc: subprocess.Popen[bytes], timeout: float = 120) -> int:
        _, err = proc.communicate(timeout=timeout)
        if proc.returncode == 3:
            self.tally.loud_failures[err.decode().rsplit("loud: ", 1)[-1].split(":", 1)[0]] += 1
        elif proc.returncode not in (0, -9):
            raise RuntimeError(f"a chaos run crashed (exit {proc.returncode}):\n{err.decode()[-3000:]}")
        return proc.returncode

    def _in_process(self, args: dict[str, Any]) -> None:
        self.tally.runs += 1
        if run_once(args) == 3:
            self.tally.loud_failures[run_once.last_error] += 1  # type: ignore[attr-defined]

    def _settled(self, ids: list[str]) -> bool:
        ((open_, total),) = self._sql("SELECT count(*) FILTER (WHERE status IN ('pending', 'submitted', 'unknown',"
                                      " 'vetoed')), count(*) FROM trading.order_intents WHERE intent_id = ANY(%s)",
                                      (ids,))
        return total == len(ids) and open_ == 0

    def _drop_faults(self) -> None:
        """Clear the faults; the stale-quote rule (every snapshot, not a fault of its own) is not counted."""
        for rule in self._admin("GET", "/state")["faults"]:
            if rule.get("times") == -1:
                self.stale_quote_hits += int(rule.get("applied", 0))
        self._admin("DELETE", "/faults")

    def _inject(self, count: int) -> None:
        for _ in range(count):
            name, spec = self.rng.choice(FAULTS)
            self._admin("POST", "/faults", {**spec, "times": 1})
            self.tally.injected[name] += 1

    def round(self, number: int, session: date) -> None:
        from include.execution.models import make_intent_id

        rng, tally = self.rng, self.tally
        data_session = self.calendar.previous_session(session)
        at = self.calendar.session(session).open + timedelta(hours=1, minutes=number)
        self._admin("POST", "/clock", {"now": at.isoformat(), "running": True})
        self._drop_faults()
        self._admin("POST", "/config", {"questions": []})
        symbols = rng.sample(SYMBOLS, 8)
        prices = {s: self._last(s) for s in symbols}
        stale_kind = rng.choice(STALE_KINDS) if rng.random() < 0.25 else None
        stale = set(symbols) if stale_kind in STALE_KINDS[1:] else set()
        if stale_kind == STALE_KINDS[0]:
            stale = {rng.choice(symbols)}
        self._verdicts(data_session, [s for s in symbols if not (stale_kind == STALE_KINDS[0] and s in stale)])
        halt = rng.random() < 0.15
        halt_during = halt and rng.random() < 0.5
        halt_at = self._halt() if halt and not halt_during else None
        tally.halted_rounds += halt
        tally.stale_rounds += bool(stale_kind)
        base = {"api": self.api, "dsn": self.dsn, "symbols": symbols, "prices": prices, "session": session.isoformat(),
                "data_session": data_session.isoformat()}
        ids = [make_intent_id(STRATEGY, s, session, "paper") for s in symbols]
        for step in range(2 if halt or stale_kind else 8):
            if step >= 2 and self._settled(ids):
                break  # every decision of the session is final: more runs would only skip them
            now = self._admin("GET", "/state")["now"]
            if stale_kind == STALE_KINDS[2]:
                now = (datetime.fromisoformat(now) + timedelta(minutes=10)).isoformat()
            if stale_kind == STALE_KINDS[1]:
                self._admin("POST", "/faults", {"path": r"^/iserver/marketdata/snapshot", "times": -1, "status": 200,
                                                "body": [{"conid": self._conid(s), "_updated": 0} for s in symbols]})
            if rng.random() < 0.15:
                self._admin("POST", "/config", {"questions": ["o10151"]})  # not on the allow-list: refused
                tally.injected["question off the allow-list"] += 1
            self._inject(rng.randint(2, 4))
            kind = rng.choice(["new run", "retry", "killed", "concurrent"])
            self.run_seq += 1
            run_id = f"chaos__{number}__{self.run_seq}"
            args = {**base, "now": now, "run_id": run_id, "try_number": 1}
            if kind == "concurrent":
                procs = [self._spawn({**args, "run_id": f"{run_id}_{i}"}) for i in (1, 2)]
                for proc in procs:
                    self._finish(proc)
                tally.concurrent += 1
                tally.runs += 2
            elif kind == "killed" or (halt_during and halt_at is None and step == 1):
                proc = self._spawn(args)
                if halt_during and halt_at is None:
                    time.sleep(rng.uniform(0.0, 1.0))
                    halt_at = self._halt()  # while the run is submitting
                if kind == "killed":
                    time.sleep(rng.uniform(0.3, 2.5))
                    proc.kill()
                    tally.kills += 1
                self._finish(proc)
                tally.runs += 1
            else:
                self._in_process(args)
            if kind in ("retry", "killed"):  # the same run again, next try: reconciles by cOID first
                self._in_process({**args, "try_number": 2})
            self._admin("POST", "/config", {"questions": []})
        if halt_during and halt_at is None:
            halt_at = self._halt()
        # Converge: faults off, one clean run (HALT and stale inputs stay as they were).
        self._drop_faults()
        if stale_kind == STALE_KINDS[1]:
            self._admin("POST", "/faults", {"path": r"^/iserver/marketdata/snapshot", "times": -1, "status": 200,
                                            "body": [{"conid": self._conid(s), "_updated": 0} for s in symbols]})
        now = self._admin("GET", "/state")["now"]
        if stale_kind == STALE_KINDS[2]:
            now = (datetime.fromisoformat(now) + timedelta(minutes=10)).isoformat()
        self._in_process({**base, "now": now, "run_id": f"chaos__{number}__settle", "try_number": 1})
        self._drop_faults()
        self._count(number, session, symbols, halt_at, stale)
        if halt_at is not None:
            self._resume()

    def _conid(self, symbol: str) -> int:
        return self._contract(symbol).conid

    def _contract(self, symbol: str) -> Any:
        from include.ibkr.client import IBKRClient

        if symbol not in self.contracts:
            with IBKRClient(self.api) as client:
                self.contracts[symbol] = client.resolve_contract(symbol)
        return self.contracts[symbol]

    def _last(self, symbol: str) -> float:
        from include.ibkr.client import IBKRClient

        with IBKRClient(self.api) as client:
            client.ensure_session()
            (snap,) = client.snapshot([self._contract(symbol)], ("31",), attempts=5)
        if not snap.last:
            raise RuntimeError(f"no last price for {symbol}")
        return float(snap.last)

    def _verdicts(self, data_session: date, symbols: list[str]) -> None:
        if symbols:
            self._sql("""
                INSERT INTO quality.symbol_verdicts (run_key, symbol, verdict, reasons, range_start, range_end, bars,
                                                     last_session, failed_checks, warned_checks)
                SELECT %s, s, 'pass', '[]', %s, %s, 60, %s, 0, 0 FROM unnest(%s::text[]) s
                ON CONFLICT (run_key, symbol) DO NOTHING""",
                      (f"chaos/{data_session}", data_session - timedelta(days=90), data_session, data_session,
                       symbols))

    def _halt(self) -> datetime:
        from include.risk.state_store import change_state

        change_state(self.dsn, "HALTED", "chaos: kill switch", "chaos")
        ((at,),) = self._sql("SELECT clock_timestamp()")
        return at

    def _resume(self) -> None:
        from include.risk.state_store import change_state

        change_state(self.dsn, "ACTIVE", "chaos: resume", "chaos")

    def _count(self, number: int, session: date, symbols: list[str], halt_at: datetime | None,
               stale: set[str]) -> None:
        from include.execution.models import make_intent_id

        ids = {make_intent_id(STRATEGY, s, session, "paper"): s for s in symbols}
        book = Counter(o.get("cOID") for o in self._admin("GET", "/orders")["orders"])
        placed = {ids[c]: n for c, n in book.items() if c in ids}
        self.tally.duplicates += sum(n - 1 for n in placed.values() if n > 1)
        self.tally.orders_on_stale += sum(n for s, n in placed.items() if s in stale)
        if halt_at is not None:
            (late,), = self._sql("SELECT count(*) FROM trading.order_events WHERE intent_id = ANY(%s)"
                                 " AND status = 'submitted' AND event_at > %s", (list(ids), halt_at))
            self.tally.orders_against_halt += late
        expected = {s for s in symbols if s not in stale} if halt_at is None else set()
        statuses = dict(self._sql("SELECT symbol, status FROM trading.order_intents WHERE intent_id = ANY(%s)",
                                  (list(ids),)))
        for s in expected:
            if placed.get(s) != 1 and statuses.get(s) not in ("rejected", "failed"):
                self.tally.not_converged.append(f"{session} {s}: {placed.get(s, 0)} orders, {statuses.get(s)}")


def main() -> None:
    logging.disable(logging.WARNING)  # the runs' own warnings (vetoes, retries): the figures below are the point
    started = time.monotonic()
    with simulator_process("--fill-mode", "immediate") as (api, admin), scratch_database("bench_chaos") as dsn:
        chaos = Chaos(api, admin, dsn, SEED)
        chaos.setup()
        session = chaos.calendar.next_session(datetime.now(UTC).date())
        for number in range(1, ROUNDS + 1):
            chaos.round(number, session)
            session = chaos.calendar.next_session(session)
        faults_applied = httpx.get(f"{admin}/stats", timeout=10).json()["faults_applied"] - chaos.stale_quote_hits
        intents = chaos._sql("SELECT status, count(*) FROM trading.order_intents GROUP BY status ORDER BY status")
        orders = len(chaos._admin("GET", "/orders")["orders"])
    t = chaos.tally
    print(f"chaos: seed {SEED}, {ROUNDS} sessions, {time.monotonic() - started:.0f} s")
    print(f"  runs            {t.runs} ({t.kills} killed -9 mid-submission, {t.concurrent} pairs run at once, "
          f"{sum(t.loud_failures.values())} failed loudly: "
          f"{', '.join(f'{n} {k}' for k, n in t.loud_failures.most_common()) or 'none'})")
    print(f"  faults injected {faults_applied + t.kills}: {faults_applied} gateway faults that hit a request "
          f"(of {sum(t.injected.values())} armed) and {t.kills} kills")
    for name, n in sorted(t.injected.items(), key=lambda kv: -kv[1]):
        print(f"    {n:>4}  {name}")
    print(f"  sessions        {t.halted_rounds} with HALT set, {t.stale_rounds} with stale inputs")
    print(f"  intents         {sum(n for _, n in intents)} ({', '.join(f'{s} {n}' for s, n in intents)})")
    print(f"  orders in book  {orders}")
    print(f"  duplicates      {t.duplicates}")
    print(f"  orders against HALT     {t.orders_against_halt}")
    print(f"  orders on stale data    {t.orders_on_stale}")
    print(f"  not converged   {len(t.not_converged)}" + "".join(f"\n    {x}" for x in t.not_converged[:10]))
    if t.duplicates or t.orders_against_halt or t.orders_on_stale:
        raise SystemExit(1)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        sys.exit(_child(sys.argv[2]))
    main()
