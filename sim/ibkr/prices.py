"""Deterministic price data: GBM daily bars seeded by (seed, symbol), CSV replay, intraday bridges."""

from __future__ import annotations

import csv
import math
import zlib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np

from sim.ibkr.exchange import SessionTable, fallback_close_ms

_RTH_MS = 390 * 60_000


@dataclass(frozen=True)
class DailySeries:
    """Daily bars of one symbol; prices in dollars, `v` in shares; arrays aligned by index."""

    ordinals: np.ndarray
    open_ms: np.ndarray  # session open (for intraday paths and partial bars)
    close_ms: np.ndarray  # session close (a bar is complete once now >= close)
    t_ms: np.ndarray  # date at 00:00 UTC: the `t` of the bar (§6.1)
    o: np.ndarray
    h: np.ndarray
    low: np.ndarray
    c: np.ndarray
    v: np.ndarray

    def __len__(self) -> int:
        return len(self.ordinals)


def _rng(seed: int, symbol: str, stream: int, extra: int = 0) -> np.random.Generator:
    # zlib.crc32, not hash(): Python salts str hashes per process and bars must match across runs.
    return np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(symbol.encode()), stream, extra])


def gbm_series(seed: int, symbol: str, table: SessionTable, start: date, count: int) -> DailySeries:
    """`count` XNYS sessions from `start`. Each quantity has its own RNG stream, so a longer series
    is an exact extension of a shorter one (bars never change when the horizon grows)."""
    s0 = table.first_on_or_after(start)
    n = max(0, min(count, len(table) - s0))
    u = _rng(seed, symbol, 0).uniform(size=4)
    p0 = math.exp(math.log(20) + u[0] * math.log(500 / 20))  # start price 20..500
    sigma = 0.01 + 0.02 * u[1]  # daily vol 1-3 %
    mu = -0.0001 + 0.0006 * u[2]
    base_volume = math.exp(math.log(1e6) + u[3] * math.log(50))  # 1e6..5e7 shares
    ret = mu - 0.5 * sigma**2 + sigma * _rng(seed, symbol, 1).standard_normal(n)
    close = p0 * np.exp(np.cumsum(ret))
    prev = np.concatenate(([p0], close[:-1]))
    opens = prev * np.exp(0.3 * sigma * _rng(seed, symbol, 2).standard_normal(n))
    c = np.round(close, 2).clip(0.01)
    o = np.round(opens, 2).clip(0.01)
    up = np.abs(_rng(seed, symbol, 3).standard_normal(n)) * 0.6 * sigma
    down = np.abs(_rng(seed, symbol, 4).standard_normal(n)) * 0.6 * sigma
    h = np.maximum(np.round(np.maximum(o, c) * np.exp(up), 2), np.maximum(o, c))
    low = np.minimum(np.round(np.minimum(o, c) * np.exp(-down), 2), np.minimum(o, c)).clip(0.01)
    v = np.round(base_volume * np.exp(0.35 * _rng(seed, symbol, 5).standard_normal(n)))
    sl = slice(s0, s0 + n)
    return DailySeries(
        table.ordinals[sl], table.open_ms[sl], table.close_ms[sl], table.day_ms[sl], o, h, low, c, v
    )


def _parse_day(text: str) -> date:
    text = text.strip()
    return datetime.strptime(text, "%Y%m%d").date() if len(text) == 8 else date.fromisoformat(text[:10])


def csv_series(path: Path, table: SessionTable) -> DailySeries:
    """CSV replay: columns date,open,high,low,close,volume (volume in shares), any row order."""
    rows: dict[int, tuple[float, float, float, float, float]] = {}
    with path.open(newline="") as fh:
        for rec in csv.DictReader(fh):
            day = _parse_day(rec["date"])
            rows[day.toordinal()] = tuple(  # type: ignore[assignment]
                float(rec[k]) for k in ("open", "high", "low", "close", "volume")
            )
    ordinals = np.array(sorted(rows), dtype=np.int64)
    close_ms, open_ms = [], []
    for ordinal in ordinals.tolist():
        pos = table.index.get(ordinal)
        if pos is None:  # not an XNYS session: still replayed, with a nominal 16:00 New York close
            close_ms.append(fallback_close_ms(date.fromordinal(ordinal)))
            open_ms.append(close_ms[-1] - _RTH_MS)
        else:
            close_ms.append(int(table.close_ms[pos]))
            open_ms.append(int(table.open_ms[pos]))
    vals = np.array([rows[o] for o in ordinals.tolist()], dtype=np.float64).reshape(-1, 5)
    return DailySeries(
        ordinals,
        np.array(open_ms, dtype=np.int64),
        np.array(close_ms, dtype=np.int64),
        (ordinals - 719163) * 86_400_000,
        vals[:, 0],
        vals[:, 1],
        vals[:, 2],
        vals[:, 3],
        vals[:, 4],
    )


def intraday_path(
    seed: int, symbol: str, ordinal: int, bar: tuple[float, float, float, float], minutes: int
) -> np.ndarray:
    """Price at each minute boundary of a session (minutes + 1 points): a seeded Brownian bridge from the
    open to the close, scaled so that its maximum is the day's high and its minimum the day's low."""
    o, h, low, c = bar
    minutes = max(1, minutes)
    steps = _rng(seed, symbol, 6, ordinal).standard_normal(minutes)
    walk = np.concatenate(([0.0], np.cumsum(steps)))
    frac = np.arange(minutes + 1) / minutes
    bridge = walk - frac * walk[-1]
    base = o + (c - o) * frac
    pos, neg = bridge > 1e-12, bridge < -1e-12
    # Largest scales that keep base + scale * bridge inside [low, high]; the binding minute touches it.
    up = float(np.min((h - base[pos]) / bridge[pos])) if pos.any() else 0.0
    dn = float(np.min((base[neg] - low) / -bridge[neg])) if neg.any() else 0.0
    path = base + np.where(bridge > 0, bridge * max(up, 0.0), bridge * max(dn, 0.0))
    path = np.round(path, 2).clip(low, h)
    path[0], path[-1] = o, c
    return path
