"""Market-data endpoints of ``IBKRClient``: snapshots (§5) and historical bars (§6), chunked daily bars."""

from __future__ import annotations

import time as _time
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from include.ibkr import errors as E
from include.ibkr import parsing as P
from include.ibkr.models import Bar, Contract, Snapshot

DEFAULT_SNAPSHOT_FIELDS = (
    "31", "55", "70", "71", "82", "83", "84", "85", "86", "87", "88", "6509", "7059", "7295", "7741", "7762",
)  # fmt: skip
MAX_DAYS_PER_HISTORY_CHUNK = 1000  # period's maximum in days (§6.1); <= 1000 points even if it counted sessions
SNAPSHOT_CONIDS_PER_CALL = 100  # max conids per call is UNCONFIRMED (§5); stay modest
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class MarketDataMixin:
    """Needs the request core of ``IBKRClient``."""

    if TYPE_CHECKING:

        def _request(
            self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None,
            idempotent: bool = True, raw: bool = False,
        ) -> Any: ...  # fmt: skip

    # ------------------------------------------------------------ market data (§5, §6)
    def snapshot(
        self, contracts: Sequence[Contract], fields: Sequence[str] = DEFAULT_SNAPSHOT_FIELDS, *,
        attempts: int = 5, wait_s: float = 0.3,
    ) -> list[Snapshot]:  # fmt: skip
        symbols = {c.conid: c.symbol for c in contracts}
        got: dict[int, Snapshot] = {}
        for attempt in range(attempts):
            missing = [conid for conid in symbols if conid not in got]
            for i in range(0, len(missing), SNAPSHOT_CONIDS_PER_CALL):
                chunk = missing[i : i + SNAPSHOT_CONIDS_PER_CALL]
                params = {"conids": ",".join(map(str, chunk)), "fields": ",".join(fields)}
                payload = self._request("GET", "/iserver/marketdata/snapshot", params=params)
                got.update((s.conid, s) for s in P.parse_snapshot(payload, symbols) if s.conid in symbols)
            if len(got) == len(symbols):
                break
            if attempt + 1 < attempts:
                _time.sleep(wait_s)  # §5 pre-flight: the first call only starts the stream
        if missing := sorted(symbols[c] for c in symbols if c not in got):
            raise E.NoDataError(
                f"no market data for {', '.join(missing)} after {attempts} snapshot attempts: check market "
                "data subscriptions and that the symbols trade now",
                endpoint="/iserver/marketdata/snapshot",
            )
        return [got[conid] for conid in symbols]

    def history(
        self, conid: int, *, period: str, bar: str, start_time: datetime | None = None,
        outside_rth: bool = False,
    ) -> dict[str, Any]:  # fmt: skip
        params = _history_params(conid, period, bar, start_time, outside_rth)
        payload = self._request("GET", "/iserver/marketdata/history", params=params)
        if not isinstance(payload, dict):
            raise P.malformed("/iserver/marketdata/history", "history is not a JSON object", payload)
        return payload

    def history_body(
        self, conid: int, *, period: str, bar: str, start_time: datetime | None = None,
        outside_rth: bool = False,
    ) -> bytes:  # fmt: skip
        """``history``'s response body undecoded, for ``parsing.parse_history_body``."""
        params = _history_params(conid, period, bar, start_time, outside_rth)
        return self._request("GET", "/iserver/marketdata/history", params=params, raw=True)

    def daily_bars(self, contract: Contract, start: date, end: date) -> list[Bar]:
        """Validated daily bars for [start, end], fetched in windows of <= 1000 calendar days."""
        return self.daily_bar_columns(contract, start, end).to_bars()

    def daily_bar_columns(self, contract: Contract, start: date, end: date) -> P.BarColumns:
        """``daily_bars`` as columns, in ascending session order."""
        import numpy as np

        parts = list(self.iter_daily_bar_columns(contract, start, end))
        days = np.concatenate([p.days for p in parts])
        order = np.argsort(days, kind="stable")
        merged = [np.concatenate([getattr(p, k) for p in parts])[order]
                  for k in ("open", "high", "low", "close", "volume")]
        return P.BarColumns(contract.symbol, contract.conid, days[order], *merged)

    def iter_daily_bar_columns(self, contract: Contract, start: date, end: date) -> Iterator[P.BarColumns]:
        """Validated daily bars for [start, end] as columns, one window of <= 1000 calendar days at a time (newest
        first, each window fetched only when the previous one was consumed: a COPY can take one while the next is
        fetched). A session is yielded once (windows may overlap at the edges: the first seen wins); no bars at all
        raises ``NoDataError`` after the last window."""
        import numpy as np

        if start > end:
            raise ValueError(f"start {start} is after end {end}")
        lo, hi = start.toordinal() - _EPOCH_ORDINAL, end.toordinal() - _EPOCH_ORDINAL
        seen: list[Any] = []
        chunk_end = end
        while chunk_end >= start:
            chunk_start = max(start, chunk_end - timedelta(days=MAX_DAYS_PER_HISTORY_CHUNK - 1))
            days = (chunk_end - chunk_start).days + 1
            # UNCONFIRMED for CP (§6.1): startTime is taken as the END of the window and period counts
            # calendar days back from it; chunks at most 1000 days wide stay within 1000 points either way.
            try:
                body = self.history_body(
                    contract.conid, period=f"{days}d", bar="1d",
                    start_time=datetime.combine(chunk_end, time(23, 59, 59), UTC),
                )  # fmt: skip
                cols = P.parse_history_body(body, contract.symbol, contract.conid)
            except E.NoDataError:
                cols = None  # e.g. a window before the listing date; fine if other windows have data
            chunk_end = chunk_start - timedelta(days=1)
            if cols is None or not len(cols):
                continue
            keep = (cols.days >= lo) & (cols.days <= hi)
            if seen:
                keep &= ~np.isin(cols.days, np.concatenate(seen))
            if not keep.all():
                cols = cols.take(keep)
            if len(cols):
                seen.append(cols.days)
                yield cols
        if not seen:
            raise E.NoDataError(
                f"IBKR has no daily bars for {contract.symbol} between {start} and {end}",
                endpoint="/iserver/marketdata/history",
            )


def _history_params(conid: int, period: str, bar: str, start_time: datetime | None,
                    outside_rth: bool) -> dict[str, Any]:
    params: dict[str, Any] = {"conid": conid, "period": period, "bar": bar, "outsideRth": str(outside_rth).lower()}
    if start_time is not None:
        if start_time.tzinfo is None:
            raise ValueError("start_time must be timezone-aware (IBKR expects UTC)")
        params["startTime"] = start_time.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S")
    return params
