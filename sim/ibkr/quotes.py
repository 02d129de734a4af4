"""Simulated top-of-book quotes and the `/iserver/marketdata/snapshot` field formatting (§5)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from sim.ibkr import formats
from sim.ibkr.bars import BarStore
from sim.ibkr.instruments import Instrument

# Fields returned when the first request names none (SWAG: bid, ask, last, change, change %, close, exchange).
DEFAULT_FIELDS = ("31", "84", "86", "82", "83", "7296", "7221")
SERVER_ID = "q0"


@dataclass(frozen=True)
class Quote:
    last: float
    bid: float
    ask: float
    bid_size: int  # shares
    ask_size: int
    last_size: int
    open: float
    high: float
    low: float
    prior_close: float
    volume: float  # shares, day so far
    is_open: bool  # the XNYS session is in progress (else `last` is the latest close)


def _noise(seed: int, symbol: str, minute: int) -> np.ndarray:
    """Deterministic per-minute draws for sizes and spread, so a fixed clock gives fixed quotes."""
    return np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(symbol.encode()), 7, minute]).uniform(size=4)


def quote(store: BarStore, inst: Instrument, now: datetime) -> Quote | None:
    now_ms = formats.epoch_ms(now)
    series = store.base(inst, now_ms)
    hi = int(np.searchsorted(series.close_ms, now_ms, side="right"))
    if hi < len(series) and series.open_ms[hi] <= now_ms:  # session in progress: walk the intraday path
        o, h, low, last, volume = store.partial(inst, series, hi, now_ms)
        prior = float(series.c[hi - 1]) if hi > 0 else o
        is_open = True
    elif hi > 0:
        j = hi - 1
        o, h, low, last = (float(a[j]) for a in (series.o, series.h, series.low, series.c))
        volume = float(series.v[j])
        prior = float(series.c[j - 1]) if j > 0 else o
        is_open = False
    else:
        return None  # before the first bar: no market data
    u = _noise(store.seed, inst.symbol, now_ms // 60_000)
    spread = max(0.01, round(last * 0.0002, 2)) * (1 + int(u[0] * 3))
    bid = max(round(last - spread / 2, 2), 0.01)
    depth = 3000 if inst.kind == "ETF" else 60  # ETF books are deep: sizes like "1,300" lots (§5)
    return Quote(
        last=last,
        bid=bid,
        ask=round(bid + spread, 2),
        bid_size=100 * (1 + int(depth * u[1] ** 3)),
        ask_size=100 * (1 + int(depth * u[2] ** 3)),
        last_size=100 * (1 + int(5 * u[3])),
        open=o,
        high=h,
        low=low,
        prior_close=prior,
        volume=volume,
        is_open=is_open,
    )


def snapshot_fields(q: Quote | None, inst: Instrument, fields: set[str], halted: bool) -> dict[str, str]:
    """Requested tags as strings (§5: values are strings even when numeric)."""
    values: dict[str, str] = {"55": inst.symbol, "7051": inst.name, "7221": inst.exchange, "6070": "STK"}
    values |= {"6008": str(inst.conid), "6509": "RpB", "6119": SERVER_ID, "7184": "1"}
    if q is not None:
        # §5: `C` = the value is the previous close (market closed), `H` = trading halted.
        prefix = "H" if halted else ("" if q.is_open else "C")
        change = q.last - q.prior_close
        values |= {
            "31": prefix + formats.price(q.last),
            "84": formats.price(q.bid),
            "86": formats.price(q.ask),
            "88": formats.hundreds(q.bid_size),  # US stocks: sizes in round lots (§5)
            "85": formats.hundreds(q.ask_size),
            "7059": str(q.last_size),
            "87": formats.volume_km(q.volume),
            "7762": str(int(q.volume)),
            "70": formats.price(q.high),
            "71": formats.price(q.low),
            "7295": formats.price(q.open),
            "7741": formats.price(q.prior_close),
            "82": formats.price(change),
            # Whether 83 carries a "%" sign is UNCONFIRMED (§5); plain number chosen.
            "83": formats.price(100 * change / q.prior_close if q.prior_close else 0.0),
            "7635": formats.price(q.last),
        }
        if not q.is_open:
            values["7296"] = formats.price(q.last)  # today's close exists only once the session ended
    return {tag: values[tag] for tag in sorted(fields, key=_tag_order) if tag in values}


def _tag_order(tag: str) -> tuple[int, str]:
    return (int(tag), "") if tag.isdigit() else (1 << 30, tag)
