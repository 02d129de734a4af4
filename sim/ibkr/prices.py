"""Deterministic price data seeded by (seed, symbol): anchored daily bars for the instrument universe, GBM
daily bars for symbols without an anchor (synthetic, benchmark), CSV replay, intraday bridges."""

from __future__ import annotations

import csv
import math
import zlib
from dataclasses import dataclass
from datetime import date, datetime
from itertools import accumulate
from pathlib import Path

import numpy as np

from sim.ibkr.exchange import SessionTable, fallback_close_ms

_RTH_MS = 390 * 60_000
# Anchored paths: log(close / anchor) = BAND * tanh(x / BAND) with x a slow plus a fast mean-reverting part,
# so a close is always within anchor * exp(+-BAND) = 0.69x .. 1.45x of the anchor, whatever the horizon;
# opening gaps and intraday highs stop at CEILING x the anchor (lows cannot get near 0.5x).
BAND = math.log(1.45)
CEILING = 1.5
_SLOW_SESSIONS = 250  # time constant of the slow (trend-like) component, in sessions
_FAST_SESSIONS = 10  # time constant of the fast (swing) component


@dataclass(frozen=True)
class Anchor:
    """Where a symbol's simulated price lives: the level its path reverts to, and how it moves."""

    price: float  # USD
    daily_vol: float  # typical daily log-return volatility (0.01 = 1 %)
    volume: float  # typical shares per session
    path: str | None = None  # symbol whose random path this one shares (GOOG follows GOOGL); None = own


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


def _ar1(shocks: np.ndarray, phi: float, x0: float) -> np.ndarray:
    """x[k] = phi * x[k-1] + shocks[k-1] from x[0] = x0 (len(shocks) + 1 points). Sequential, so a longer
    series is an exact extension of a shorter one."""
    return np.fromiter(accumulate(shocks.tolist(), lambda x, e: phi * x + e, initial=x0), float, len(shocks) + 1)


def anchored_series(
    seed: int, symbol: str, table: SessionTable, start: date, count: int, anchor: Anchor
) -> DailySeries:
    """`count` XNYS sessions from `start`, around `anchor.price`. The log deviation from the anchor is a slow
    AR(1) (time constant ~1 year) plus a fast one (~2 weeks), both stationary from the first bar, whose
    variances give the symbol's daily volatility; a tanh cap keeps closes within 0.69x..1.45x of the anchor
    (BAND) for any horizon and seed. Like `gbm_series`, one RNG stream per quantity: deterministic per
    (seed, symbol, start), and growing the horizon never changes earlier bars."""
    s0 = table.first_on_or_after(start)
    n = max(0, min(count, len(table) - s0))
    sigma = anchor.daily_vol
    phi_slow, phi_fast = math.exp(-1 / _SLOW_SESSIONS), math.exp(-1 / _FAST_SESSIONS)
    # Daily variance of an AR(1) with stationary std s is 2 s^2 (1 - phi): split sigma^2 between the two parts.
    s_slow = min(max(7 * sigma, 0.07), 0.20)
    rest = max(sigma**2 - 2 * s_slow**2 * (1 - phi_slow), 0.1 * sigma**2)
    s_fast = math.sqrt(rest / (2 * (1 - phi_fast)))
    key = anchor.path or symbol  # the level path's draws; bars and volume below always use the symbol's own
    z0 = _rng(seed, key, 10).standard_normal(2)  # start in the stationary distribution
    slow = _ar1(s_slow * math.sqrt(1 - phi_slow**2) * _rng(seed, key, 11).standard_normal(n), phi_slow,
                s_slow * float(z0[0]))
    fast = _ar1(s_fast * math.sqrt(1 - phi_fast**2) * _rng(seed, key, 12).standard_normal(n), phi_fast,
                s_fast * float(z0[1]))
    level = anchor.price * np.exp(BAND * np.tanh((slow + fast) / BAND))  # n + 1 points: [0] is the eve
    close, prev = level[1:], level[:-1]
    top = math.floor(anchor.price * CEILING * 100) / 100
    opens = prev * np.exp(0.3 * sigma * _rng(seed, symbol, 13).standard_normal(n))
    c = np.round(close, 2).clip(0.01)
    o = np.round(opens, 2).clip(0.01, top)
    up = np.abs(_rng(seed, symbol, 14).standard_normal(n)) * 0.6 * sigma
    down = np.abs(_rng(seed, symbol, 15).standard_normal(n)) * 0.6 * sigma
    h = np.maximum(np.round(np.maximum(o, c) * np.exp(up), 2).clip(None, top), np.maximum(o, c))
    low = np.minimum(np.round(np.minimum(o, c) * np.exp(-down), 2), np.minimum(o, c)).clip(0.01)
    # Busier sessions on bigger moves, around the symbol's typical volume.
    move = np.abs(np.log(close / prev)) / sigma if n else np.empty(0)
    noise = _rng(seed, symbol, 16).standard_normal(n)
    v = np.round(anchor.volume * np.exp(0.3 * noise - 0.045) * (0.75 + 0.25 * move))
    sl = slice(s0, s0 + n)
    return DailySeries(
        table.ordinals[sl], table.open_ms[sl], table.close_ms[sl], table.day_ms[sl], o, h, low, c, v
    )


def daily_series(
    seed: int, symbol: str, table: SessionTable, start: date, count: int, anchor: Anchor | None
) -> DailySeries:
    """Anchored bars for universe symbols, GBM for the rest (synthetic and benchmark symbols)."""
    if anchor is None:
        return gbm_series(seed, symbol, table, start, count)
    return anchored_series(seed, symbol, table, start, count, anchor)


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
