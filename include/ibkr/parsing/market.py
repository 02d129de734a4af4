"""Pure parsers for market data: snapshot fields (§5) and historical bars (§6)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from operator import attrgetter
from typing import Any

import msgspec

from include.ibkr import errors as E
from include.ibkr.models import Bar, Snapshot
from include.ibkr.parsing.common import (
    _MAX_LOTS,
    _MAX_PRICE,
    _NUM,
    expect_list,
    malformed,
    parse_error,
    snippet,
    to_float,
    to_int,
    to_str,
)

_SUFFIX = {"K": 1e3, "M": 1e6, "B": 1e9}
_PREFLIGHT_KEYS = frozenset({"conid", "conidEx", "_updated", "server_id", "6119"})
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MS_PER_DAY = 86_400_000
_MAX_T_MS = 4_102_444_800_000  # 2100-01-01: anything later is a unit bug (seconds vs ms), not a bar
_DATE_CACHE: dict[int, date] = {}  # epoch day -> date; bounded by the 1970-2100 range of t


# ---------------------------------------------------------------- snapshot (§5)
def parse_price(value: Any) -> tuple[float | None, str | None]:
    """Snapshot price string -> (price, type); ``C`` = prior close, ``H`` = halted (§5 field 31)."""
    if value is None or value == "":
        return None, None
    kind = "last"
    if isinstance(value, str):
        value = value.strip()
        if value[:1] in ("C", "H"):
            kind = "close" if value[0] == "C" else "halted"
            value = value[1:]
        value = value.rstrip("%")
    return to_float(value, "price", "/iserver/marketdata/snapshot"), kind


def parse_quantity_suffix(value: Any) -> float:
    """``"12.3M"`` -> 12300000.0; K/M/B suffixes and thousands separators (§5 field 87)."""
    endpoint = "/iserver/marketdata/snapshot"
    mult = None
    if isinstance(value, str):
        value = value.replace(",", "").strip().upper()
        mult = _SUFFIX.get(value[-1:])
        if mult:
            value = value[:-1]
    number = to_float(value, "quantity", endpoint)
    if number is None:
        raise malformed(endpoint, "empty quantity")
    # A suffixed figure is display-rounded anyway; round to whole shares to drop float noise.
    return float(round(number * mult)) if mult else number


def is_preflight(item: Mapping[str, Any]) -> bool:
    """§5 pre-flight: the first request for a conid returns only identifiers, no data fields."""
    return all(key in _PREFLIGHT_KEYS for key in item)


def _qty(item: Mapping[str, Any], key: str, mult: float = 1.0) -> float | None:
    raw = item.get(key)
    return None if raw is None or raw == "" else parse_quantity_suffix(raw) * mult


def _quote_time(updated: Any) -> datetime | None:
    """``_updated`` (epoch ms) as a UTC time; None when missing or not a plausible timestamp (1970-2100)."""
    if not isinstance(updated, int | float) or isinstance(updated, bool) or not 0 < updated < _MAX_T_MS:
        return None  # the comparison is False for NaN as well
    return datetime.fromtimestamp(updated / 1000, tz=UTC)


def parse_snapshot(
    payload: Any,
    symbols_by_conid: Mapping[int, str],
    *,
    size_multiplier: float = 100.0,
    received_at: datetime | None = None,
) -> list[Snapshot]:
    """Populated items -> Snapshots; pre-flight items are skipped (the caller re-polls for them).

    ``quote_at`` is the gateway's ``_updated`` time, None without one: a quote of unknown age must not look fresh.
    ``captured_at`` (the storage key) falls back to ``received_at``, else now.
    """
    endpoint = "/iserver/marketdata/snapshot"
    out: list[Snapshot] = []
    for item in expect_list(payload, endpoint):
        if not isinstance(item, dict) or "conid" not in item:
            raise malformed(endpoint, "item without conid", item)
        if is_preflight(item):
            continue
        conid = to_int(item["conid"], "conid", endpoint)
        if conid is None:
            raise malformed(endpoint, "item with an empty conid", item)
        symbol = symbols_by_conid.get(conid) or to_str(item.get("55"))
        if symbol is None:
            raise malformed(endpoint, f"conid {conid} was not requested and has no symbol field", item)
        quote_at = _quote_time(item.get("_updated"))
        last, last_type = parse_price(item.get("31"))
        volume = _qty(item, "7762")  # long form first; 87 is display-formatted ("12.3M")
        if volume is None:
            volume = _qty(item, "87")
        out.append(Snapshot(
            symbol=symbol, conid=conid, captured_at=quote_at or received_at or datetime.now(UTC), quote_at=quote_at,
            last=last, last_price_type=last_type,
            bid=parse_price(item.get("84"))[0], ask=parse_price(item.get("86"))[0],
            # §5: US-stock bid/ask sizes (88/85) are shown in round lots of 100 shares.
            bid_size=_qty(item, "88", size_multiplier), ask_size=_qty(item, "85", size_multiplier),
            last_size=_qty(item, "7059"), volume=volume,
            day_high=parse_price(item.get("70"))[0], day_low=parse_price(item.get("71"))[0],
            open=parse_price(item.get("7295"))[0], prior_close=parse_price(item.get("7741"))[0],
            change=parse_price(item.get("82"))[0], change_pct=parse_price(item.get("83"))[0],
            md_availability=to_str(item.get("6509")), server_id=to_str(item.get("server_id")),
        ))  # fmt: skip
    return out


# ---------------------------------------------------------------- history (§6.1)
def _day(days: float) -> date:
    day = _DATE_CACHE[days] = date.fromordinal(_EPOCH_ORDINAL + int(days))
    return day


def _bar_problem(row: Any) -> tuple[date | None, str]:
    """Slow path: say precisely why a bar failed the fast check."""
    if not isinstance(row, dict):
        return None, f"bar is not an object: {snippet(row, 80)}"
    t = row.get("t")
    day = None
    if isinstance(t, int | float) and not isinstance(t, bool) and 0 < t < _MAX_T_MS:
        day = _day(t // _MS_PER_DAY)
    else:
        return None, f"timestamp t={t!r} is not epoch milliseconds"
    for key in ("o", "h", "l", "c", "v"):
        value = row.get(key)
        if type(value) not in (int, float):
            return day, f"{key}={value!r} is not a number"
        if type(value) is float and not math.isfinite(value):
            return day, f"{key}={value!r} is not finite"
    o, h, l, c, v = (row[k] for k in ("o", "h", "l", "c", "v"))  # noqa: E741
    if min(o, h, l, c) <= 0:
        return day, f"non-positive price (o={o}, h={h}, l={l}, c={c})"
    if h < l:
        return day, f"high {h} < low {l}"
    if h < max(o, c) or l > min(o, c):
        return day, f"open/close outside the high-low range (o={o}, h={h}, l={l}, c={c})"
    if v < 0:
        return day, f"negative volume {v}"
    return day, f"value above the sanity ceiling (prices < {_MAX_PRICE:g}, volume < {_MAX_LOTS:g} lots)"


def parse_history(payload: Any, symbol: str, conid: int, *, volume_multiplier: float = 100.0) -> list[Bar]:
    """Validate every bar and return them in payload order; one bad bar rejects the whole response."""
    endpoint = "/iserver/marketdata/history"
    if not isinstance(payload, dict):
        raise malformed(endpoint, f"history for {symbol} is not a JSON object", payload)
    if "error" in payload:
        raise parse_error(200, json.dumps(payload), endpoint)
    data = payload.get("data")
    if not isinstance(data, list):
        raise malformed(endpoint, f"history for {symbol} has no 'data' list", payload)
    out: list[Bar] = []
    append = out.append
    seen: set[int] = set()
    new = tuple.__new__
    dates = _DATE_CACHE
    whole = volume_multiplier != 1.0
    for row in data:
        # Fast path: one chained comparison rejects NaN (every comparison is false), inf, non-positive
        # prices and broken ranges; strings/None raise TypeError; the type checks catch bools.
        try:
            t, o, h, l, c, v = row["t"], row["o"], row["h"], row["l"], row["c"], row["v"]  # noqa: E741
            ok = (
                0.0 < l <= o <= h < _MAX_PRICE and l <= c <= h and 0.0 <= v < _MAX_LOTS and 0 < t < _MAX_T_MS
                and (type(v) is float or type(v) is int) and (type(t) is int or type(t) is float)
            )  # fmt: skip
            if ok and not (type(o) is type(h) is type(l) is type(c) is float):
                ok = type(o) in _NUM and type(h) in _NUM and type(l) in _NUM and type(c) in _NUM
                o, h, l, c = float(o), float(h), float(l), float(c)  # noqa: E741
        except (TypeError, KeyError):
            ok = False
        if not ok:
            day, reason = _bar_problem(row)
            raise E.InvalidBarError(symbol, day, reason, endpoint=endpoint)
        # Session date = UTC calendar date of t. Daily bars are stamped at 00:00 UTC (IBFIX: t =
        # 2023-11-01T00:00Z, i.e. 20:00 New York the day before), 00:00 New York (04/05:00 UTC) or
        # at the close (20/21:00 UTC): all fall on the session's UTC date, whereas a New York date
        # would shift the 00:00 UTC stamp back a day.
        days = t // _MS_PER_DAY
        if days in seen:
            raise E.InvalidBarError(symbol, _day(days), "duplicate date", endpoint=endpoint)
        seen.add(days)
        day = dates.get(days) or _day(days)
        # §6.1: US-stock volume is in round lots (x100 shares) with up to 2 decimals, whatever
        # volumeFactor says; rounding to whole shares drops the float noise of lots x 100.
        vol = float(round(v * volume_multiplier)) if whole else v
        append(new(Bar, (symbol, conid, day, o, h, l, c, vol)))
    return out


# ---------------------------------------------------------------- history as columns (the ingestion path)
class BarColumns:
    """Validated daily bars of one symbol as numpy columns: ``days`` (epoch days of the session dates, int64),
    ``open`` .. ``volume`` (float64, volume in shares). No per-bar objects: what ingestion COPYs."""

    __slots__ = ("close", "conid", "days", "high", "low", "open", "symbol", "volume")

    def __init__(self, symbol: str, conid: int, days: Any, o: Any, h: Any, l: Any, c: Any, v: Any) -> None:  # noqa: E741
        self.symbol, self.conid, self.days = symbol, conid, days
        self.open, self.high, self.low, self.close, self.volume = o, h, l, c, v

    def __len__(self) -> int:
        return len(self.days)

    def take(self, index: Any) -> BarColumns:
        return BarColumns(self.symbol, self.conid, self.days[index], self.open[index], self.high[index],
                          self.low[index], self.close[index], self.volume[index])

    def to_bars(self) -> list[Bar]:
        cols = (self.open.tolist(), self.high.tolist(), self.low.tolist(), self.close.tolist(), self.volume.tolist())
        days = [_DATE_CACHE.get(d) or _day(d) for d in self.days.tolist()]
        return [Bar(self.symbol, self.conid, d, *vals) for d, *vals in zip(days, *cols, strict=True)]

    @classmethod
    def from_bars(cls, symbol: str, conid: int, bars: list[Bar]) -> BarColumns:
        import numpy as np

        days = np.array([b.session_date.toordinal() - _EPOCH_ORDINAL for b in bars], dtype=np.int64)
        values = np.array([b[3:] for b in bars], dtype=np.float64).reshape(len(bars), 5)
        return cls(symbol, conid, days, *(values[:, i].copy() for i in range(5)))


class _Row(msgspec.Struct, gc=False):  # float takes JSON ints; bools, strings, null, NaN and inf do not decode
    t: float
    o: float
    h: float
    l: float  # noqa: E741
    c: float
    v: float


class _History(msgspec.Struct):
    data: list[_Row]
    error: Any = msgspec.UNSET


_HISTORY_DECODER = msgspec.json.Decoder(_History)
_ROW = attrgetter("t", "o", "h", "l", "c", "v")


def parse_history_body(body: bytes, symbol: str, conid: int, *, volume_multiplier: float = 100.0) -> BarColumns:
    """``parse_history`` on the raw response body, as columns: one typed decode (msgspec) and one vectorised check.
    Anything the fast path does not accept goes through ``parse_history``, which names the bad bar and its date
    exactly as before (or parses what only the slow path can type)."""
    import numpy as np

    try:
        decoded = _HISTORY_DECODER.decode(body)
    except msgspec.DecodeError:  # includes ValidationError: wrong types, NaN, no data list, not JSON
        decoded = None
    if decoded is not None and decoded.error is msgspec.UNSET:
        rows = decoded.data
        a = np.array(list(map(_ROW, rows)), dtype=np.float64).reshape(len(rows), 6)
        t, o, h, l, c, v = (a[:, i].copy() for i in range(6))  # noqa: E741
        # The fast path's chained comparison, vectorised: NaN fails every comparison.
        ok = ((l > 0.0) & (l <= o) & (o <= h) & (h < _MAX_PRICE) & (l <= c) & (c <= h) & (v >= 0.0)
              & (v < _MAX_LOTS) & (t > 0) & (t < _MAX_T_MS))  # fmt: skip
        if ok.all():
            days = np.floor_divide(t, _MS_PER_DAY).astype(np.int64)
            if np.unique(days).size == days.size:
                if volume_multiplier != 1.0:
                    v = np.round(v * volume_multiplier)  # half to even, like round()
                return BarColumns(symbol, conid, days, o, h, l, c, v)
    try:
        payload = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes | bytearray) else str(body)
        raise malformed("/iserver/marketdata/history", "invalid JSON (HTTP 200)", text) from None
    bars = parse_history(payload, symbol, conid, volume_multiplier=volume_multiplier)
    return BarColumns.from_bars(symbol, conid, bars)
