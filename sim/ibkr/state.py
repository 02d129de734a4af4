"""All mutable state of one simulated gateway (lives on `app.state.sim`) and the request gate checks."""

from __future__ import annotations

import dataclasses
import itertools
import zlib
from datetime import datetime

from starlette.responses import JSONResponse, Response

from sim.ibkr import formats
from sim.ibkr.bars import BarStore
from sim.ibkr.config import SimulatorConfig
from sim.ibkr.instruments import Instrument, InstrumentRegistry
from sim.ibkr.limits import FaultBook, RateLimiter, Stats
from sim.ibkr.orders import OrderBook, Venue
from sim.ibkr.portfolio import Mark, Portfolio
from sim.ibkr.quotes import Quote, quote
from sim.ibkr.session import Session, SimClock

# §3.2: without a brokerage session these still answer; every other /iserver path says "no bridge".
BRIDGELESS = frozenset({"/iserver/auth/status", "/iserver/reauthenticate", "/iserver/auth/ssodh/init"})
# §3.4: everything else under /iserver needs `GET /iserver/accounts` first in the brokerage session.
PRIMING_EXEMPT = (
    *BRIDGELESS, "/iserver/accounts", "/iserver/secdef/", "/iserver/contract/", "/iserver/questions/",
)


def error(status: int, message: str, with_code: bool = False) -> JSONResponse:
    """§3.5 error body `{"error": ...}`, optionally with `statusCode`."""
    body: dict[str, object] = {"error": message}
    if with_code:
        body["statusCode"] = status
    return JSONResponse(body, status_code=status)


class SimState:
    def __init__(self, config: SimulatorConfig, bars: BarStore | None = None) -> None:
        self.initial = config
        self.cfg = config
        self.clock = SimClock(config.now)
        now = self.clock.now()
        self.registry = InstrumentRegistry(config)
        self.bars = bars or BarStore(config)
        tag = zlib.crc32(f"{config.seed}:{config.account_id}".encode())
        self.user_id = 90_000_000 + tag % 10_000_000
        mac = ":".join(f"{b:02X}" for b in (0xF4, 0x03, *tag.to_bytes(4, "big")))
        self.session = Session(config.session_state, config.competing, config.primed, now, mac)
        self.portfolio = Portfolio(config.account_id, config.initial_cash)
        for symbol, qty, avg in config.initial_positions:
            inst = self.registry.get(symbol)
            if inst is None:
                raise ValueError(f"initial position in unknown symbol {symbol!r}")
            self.portfolio.seed_position(inst, float(qty), float(avg))
        self.orders = OrderBook(self.registry, self.portfolio)
        self.limits = RateLimiter()
        self.faults = FaultBook()
        self.stats = Stats()
        self.halted: set[str] = set()
        self.history_ids = itertools.count(195_400)

    def reset(self) -> SimState:
        """A fresh state from the start-up config; the deterministic bar cache is kept for speed."""
        bars = BarStore(self.initial)
        bars._base = self.bars._base  # generated series depend only on (seed, symbol): safe to share
        return SimState(self.initial, bars)

    def configure(self, **changes: object) -> None:
        self.cfg = dataclasses.replace(self.cfg, **changes)  # type: ignore[arg-type]

    def now(self) -> datetime:
        return self.clock.now()

    # --- gate (§2, §3, §9), run before every /v1/api handler ------------------------------------------
    def gate(self, method: str, path: str) -> Response | None:
        cfg = self.cfg
        self.session.housekeep(self.now(), cfg.idle_timeout_s)
        limits = self.limits
        if cfg.rate_limits and not limits.allow(method, path, cfg.global_rate_per_sec, cfg.penalty_box_s):
            return error(429, "Too many requests")  # exact body UNCONFIRMED (§9)
        state = self.session.state
        if state == "logged_out":
            return Response(status_code=401)  # §3.1: no session -> 401; body UNCONFIRMED, sent empty
        if path.startswith("/iserver"):
            if state == "sso_only" and path not in BRIDGELESS:
                return error(400, "Bad Request: no bridge", with_code=True)
            if not self.session.primed and not path.startswith(PRIMING_EXEMPT):
                return error(500, "Please query /accounts first")  # JSON layout UNCONFIRMED (§3.4)
        return None

    # --- market -------------------------------------------------------------------------------------
    def session_open(self, now: datetime) -> bool:
        return self.bars.table.is_open(formats.epoch_ms(now))

    def quote(self, inst: Instrument, now: datetime) -> Quote | None:
        return quote(self.bars, inst, now)

    def last_price(self, inst: Instrument, now: datetime) -> float | None:
        q = self.quote(inst, now)
        return q.last if q else None

    def mark(self, now: datetime) -> Mark:
        def _mark(inst: Instrument) -> float:
            q = self.quote(inst, now)
            if q is not None:
                return q.last
            pos = self.portfolio.positions.get(inst.conid)
            return pos.avg_cost if pos else 0.0

        return _mark

    # --- orders -------------------------------------------------------------------------------------
    def commission(self, qty: float) -> float:
        return max(self.cfg.commission_min, self.cfg.commission_per_share * qty)

    def venue(self, now: datetime) -> Venue:
        table, now_ms = self.bars.table, formats.epoch_ms(now)
        current = table.current(now_ms)
        upcoming = current if current is not None else table.next_open(now_ms)
        close = int(table.close_ms[upcoming]) if upcoming is not None else None
        t = self.portfolio.totals(self.mark(now))
        buying_power = 4 * (t["net"] - 0.25 * t["gross"])  # same rule as the summary's `buyingpower`
        return Venue(session_open=current is not None, day_close_ms=close, buying_power=buying_power)

    def sync_orders(self, now: datetime) -> None:
        """Lazy order evaluation: fills happen when orders, trades or positions are looked at."""
        session_open = self.session_open(now)
        immediate = self.cfg.fill_mode == "immediate"

        def tradable(inst: Instrument) -> bool:
            return inst.symbol not in self.halted and (immediate or session_open)

        self.orders.evaluate(now, lambda i: self.last_price(i, now), tradable, session_open, self.commission)
