"""Per-app store of daily series: generation cache, intraday paths, partial bars and admin overrides."""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date

import numpy as np

from sim.ibkr.config import SimulatorConfig
from sim.ibkr.exchange import SessionTable, fallback_close_ms, session_table
from sim.ibkr.instruments import Instrument
from sim.ibkr.prices import DailySeries, csv_series, daily_series, intraday_path

_GROW = 512  # sessions generated beyond the horizon, so the series is regenerated rarely
_PATH_CACHE = 4096


@dataclass(frozen=True)
class OverrideSeries:
    """Daily bars with admin overrides spliced in; rows are pre-rendered because values may be anything."""

    base: DailySeries
    ordinals: np.ndarray
    close_ms: np.ndarray
    t_ms: np.ndarray
    frags: list[str]
    h: np.ndarray  # numeric views (NaN where the override is not a number), for the chart strings
    low: np.ndarray
    v: np.ndarray


def _num(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


class BarStore:
    def __init__(self, config: SimulatorConfig) -> None:
        self.seed = config.seed
        self.start = config.history_start
        self._base: dict[str, DailySeries] = {}
        self._overrides: dict[str, dict[int, dict]] = {}
        self._merged: dict[str, OverrideSeries] = {}
        self._paths: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self.no_data: set[str] = set()

    @property
    def table(self) -> SessionTable:
        return session_table(self.start)

    def base(self, inst: Instrument, upto_ms: int) -> DailySeries:
        """Series covering every session that opened by `upto_ms` (generated once, grown on demand)."""
        series = self._base.get(inst.symbol)
        if inst.csv_path is not None:
            if series is None:
                series = self._base[inst.symbol] = csv_series(inst.csv_path, self.table)
            return series
        table = self.table
        s0 = table.first_on_or_after(self.start)
        available = len(table) - s0
        need = min(max(int(np.searchsorted(table.open_ms, upto_ms, side="right")) - s0, 0), available)
        if series is None or len(series) < need:
            count = min(available, need + _GROW)
            series = daily_series(self.seed, inst.symbol, table, self.start, count, inst.anchor)
            self._base[inst.symbol] = series
            self._merged.pop(inst.symbol, None)
        return series

    def path(self, inst: Instrument, series: DailySeries, j: int) -> np.ndarray:
        """Minute path of bar `j` (cached, LRU)."""
        key = (inst.symbol, int(series.ordinals[j]))
        cached = self._paths.get(key)
        if cached is not None:
            self._paths.move_to_end(key)
            return cached
        minutes = int(series.close_ms[j] - series.open_ms[j]) // 60_000
        bar = (float(series.o[j]), float(series.h[j]), float(series.low[j]), float(series.c[j]))
        walk = inst.anchor.path if inst.anchor and inst.anchor.path else inst.symbol  # GOOG walks like GOOGL
        path = intraday_path(self.seed, walk, key[1], bar, minutes)
        self._paths[key] = path
        if len(self._paths) > _PATH_CACHE:
            self._paths.popitem(last=False)
        return path

    def partial(self, inst: Instrument, series: DailySeries, j: int, at_ms: int) -> tuple[float, ...]:
        """(o, h, l, c, v_shares) of bar `j` as of `at_ms` inside its session (today's bar in progress)."""
        path = self.path(inst, series, j)
        minutes = len(path) - 1
        k = min(max(int(at_ms - series.open_ms[j]) // 60_000, 0), minutes)
        seen = path[: k + 1]
        volume = float(round(series.v[j] * k / minutes))
        return float(path[0]), float(seen.max()), float(seen.min()), float(path[k]), volume

    # --- admin overrides (§ admin API): values are passed through exactly as given -------------------
    def override(self, symbol: str, bars: list[dict]) -> None:
        rows = self._overrides.setdefault(symbol, {})
        for bar in bars:
            rows[date.fromisoformat(str(bar["date"])).toordinal()] = bar
        self._merged.pop(symbol, None)

    def set_no_data(self, symbol: str, flag: bool) -> None:
        (self.no_data.add if flag else self.no_data.discard)(symbol)

    def has_overrides(self, symbol: str) -> bool:
        return bool(self._overrides.get(symbol))

    def merged(self, inst: Instrument, base: DailySeries) -> OverrideSeries:
        cached = self._merged.get(inst.symbol)
        if cached is not None and cached.base is base:
            return cached
        rows = self._overrides.get(inst.symbol, {})
        index = {int(o): i for i, o in enumerate(base.ordinals.tolist())}
        ordinals = sorted(set(index) | set(rows))
        table = self.table
        close_ms, t_ms, frags, hs, ls, vs = [], [], [], [], [], []
        for ordinal in ordinals:
            day_ms = (ordinal - 719163) * 86_400_000
            if ordinal in rows:
                raw = rows[ordinal]
                pos = table.index.get(ordinal)
                day = date.fromordinal(ordinal)
                close_ms.append(int(table.close_ms[pos]) if pos is not None else fallback_close_ms(day))
                bar = {k: raw.get(k) for k in ("o", "c", "h", "l", "v")}
                frags.append(json.dumps({**bar, "t": day_ms}, separators=(",", ":")))
                hs.append(_num(bar["h"]))
                ls.append(_num(bar["l"]))
                vs.append(_num(bar["v"]))
            else:
                i = index[ordinal]
                close_ms.append(int(base.close_ms[i]))
                o, h, low, c, v = (float(a[i]) for a in (base.o, base.h, base.low, base.c, base.v))
                frags.append(f'{{"o":{o!r},"c":{c!r},"h":{h!r},"l":{low!r},"v":{v / 100!r},"t":{day_ms}}}')
                hs.append(h)
                ls.append(low)
                vs.append(v / 100)
            t_ms.append(day_ms)
        merged = OverrideSeries(
            base,
            np.array(ordinals, dtype=np.int64),
            np.array(close_ms, dtype=np.int64),
            np.array(t_ms, dtype=np.int64),
            frags,
            np.array(hs),
            np.array(ls),
            np.array(vs),
        )
        self._merged[inst.symbol] = merged
        return merged
