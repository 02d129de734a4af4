"""Instrument universe: US stocks and ETFs from data/universe.csv (real conids where known, anchored price
levels), CSV-replay symbols and synthetic symbols (§4)."""

from __future__ import annotations

import csv
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sim.ibkr.config import SimulatorConfig
from sim.ibkr.prices import Anchor

UNIVERSE_CSV = Path(__file__).with_name("data") / "universe.csv"


@dataclass(frozen=True)
class Instrument:
    symbol: str
    conid: int
    name: str
    exchange: str  # primary listing exchange
    kind: str = "STK"  # positions `type`: STK or ETF
    industry: str = "Technology"
    csv_path: Path | None = None  # set when bars come from CSV replay
    anchor: Anchor | None = None  # price level of the seeded path; None = free GBM (synthetic symbols)


# Simulator ids for universe rows without a known real conid: stable per symbol, below the CSV-replay and
# synthetic ranges (800M+ and 900M+), so the three never collide.
UNIVERSE_CONID_BASE = 700_000_000
_UNIVERSE_CONID_SPAN = 100_000_000
# Non-US listings returned next to the US one so that clients must filter (§4.1 "several hits", §4.2).
FOREIGN_LISTINGS: dict[str, tuple[tuple[int, str], ...]] = {"AAPL": ((38708077, "MEXI"),)}
CHINESE_NAMES = {"AAPL": "&#x82F9;&#x679C;&#x516C;&#x53F8;"}  # HTML-entity encoded, as in real data (§4.2)
SYNTHETIC_CONID_BASE = 900_000_000
_CSV_CONID_BASE = 800_000_000


@cache
def universe() -> dict[str, Instrument]:
    """The instruments of data/universe.csv by symbol (`#` lines are comments)."""
    with UNIVERSE_CSV.open(newline="") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    out: dict[str, Instrument] = {}
    used = {int(r["conid"]) for r in rows if r["conid"]}
    for r in rows:
        symbol = r["symbol"]
        if r["conid"]:
            conid = int(r["conid"])
        else:
            conid = UNIVERSE_CONID_BASE + zlib.crc32(symbol.encode()) % _UNIVERSE_CONID_SPAN
            while conid in used:
                conid += 1
        used.add(conid)
        anchor = Anchor(float(r["price"]), float(r["daily_vol"]), float(r["adv_m"]) * 1e6, r["follows"] or None)
        out[symbol] = Instrument(symbol, conid, r["name"], r["exchange"], r["kind"], r["industry"], anchor=anchor)
    return out


def anchor_of(symbol: str) -> Anchor | None:
    """The universe anchor of `symbol`, None for symbols outside it."""
    inst = universe().get(symbol)
    return inst.anchor if inst else None


class InstrumentRegistry:
    """Lookup by symbol and conid; formats the contract-search endpoints (§4)."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.by_symbol: dict[str, Instrument] = {}
        for inst in universe().values():
            self._add(inst)
        for i in range(1, config.synthetic_symbols + 1):
            self._add(Instrument(f"SYN{i:04d}", SYNTHETIC_CONID_BASE + i, f"SYNTHETIC {i:04d} INC", "NYSE"))
        if config.bars_csv_dir:
            self._add_csv(Path(config.bars_csv_dir))
        self.by_conid = {inst.conid: inst for inst in self.by_symbol.values()}

    def _add(self, inst: Instrument) -> None:
        self.by_symbol[inst.symbol] = inst

    def _add_csv(self, folder: Path) -> None:
        used = {inst.conid for inst in self.by_symbol.values()}
        for path in sorted(folder.glob("*.csv")):
            symbol = path.stem.upper()
            known = self.by_symbol.get(symbol)
            if known is not None:
                self._add(Instrument(**{**known.__dict__, "csv_path": path}))
                continue
            # Stable conid per symbol, independent of the other files in the folder.
            conid = _CSV_CONID_BASE + zlib.crc32(symbol.encode()) % 99_999_999
            while conid in used:
                conid += 1
            used.add(conid)
            self._add(Instrument(symbol, conid, f"{symbol} (CSV REPLAY)", "NYSE", csv_path=path))

    def get(self, symbol: str) -> Instrument | None:
        return self.by_symbol.get(symbol)

    def by_id(self, conid: int) -> Instrument | None:
        return self.by_conid.get(conid)

    def search(self, query: str, by_name: bool = False, sec_type: str = "STK") -> list[dict]:
        """`/iserver/secdef/search` items; `conid` is a string here (§4.1)."""
        if sec_type.upper() != "STK" or not query:
            return []
        q = query.upper().strip()
        if q not in self.by_symbol and q.replace(".", " ").replace("/", " ") in self.by_symbol:
            q = q.replace(".", " ").replace("/", " ")  # BRK.B / BRK/B: IBKR spells the share class "BRK B"
        if by_name:
            hits = [i for i in self.by_symbol.values() if q in i.name.upper()]
        else:
            exact = self.by_symbol.get(q)
            prefix = sorted(s for s in self.by_symbol if s.startswith(q) and s != q)
            hits = ([exact] if exact else []) + [self.by_symbol[s] for s in prefix]
        items: list[dict] = []
        for inst in hits[:10]:
            items.append(_search_item(inst, str(inst.conid), inst.exchange))
            for conid, exchange in FOREIGN_LISTINGS.get(inst.symbol, ()):
                items.append(_search_item(inst, str(conid), exchange))
        return items

    def stocks(self, symbols: list[str]) -> dict[str, list[dict]]:
        """`/trsrv/stocks`: keyed by symbol, unknown symbols left out; `conid` is an int here (§4.2)."""
        out: dict[str, list[dict]] = {}
        for symbol in symbols:
            inst = self.by_symbol.get(symbol)  # exact match: the endpoint wants capital letters (§4.2)
            if inst is None:
                continue
            contracts = [{"conid": inst.conid, "exchange": inst.exchange, "isUS": True}]
            contracts += [
                {"conid": c, "exchange": ex, "isUS": False} for c, ex in FOREIGN_LISTINGS.get(symbol, ())
            ]
            out[symbol] = [
                {
                    "name": inst.name,
                    "chineseName": CHINESE_NAMES.get(symbol),
                    "assetClass": "STK",
                    "contracts": contracts,
                }
            ]
        return out

    def contract_info(self, inst: Instrument) -> dict:
        """`/iserver/contract/{conid}/info`, snake_case (§4.3)."""
        return {
            "cfi_code": "ESXXXX",
            "symbol": inst.symbol,
            "cusip": None,
            "expiry_full": None,
            "con_id": inst.conid,
            "maturity_date": None,
            "industry": inst.industry,
            "instrument_type": "STK",
            "trading_class": "NMS" if inst.exchange == "NASDAQ" else inst.symbol,
            "valid_exchanges": f"SMART,AMEX,NYSE,CBOE,ARCA,ISLAND,{inst.exchange},IEX",
            "allow_sell_long": False,
            "is_zero_commission_security": False,
            "local_symbol": inst.symbol,
            "contract_clarification_type": None,
            "classifier": None,
            "currency": "USD",
            "text": None,
            "underlying_con_id": 0,
            "r_t_h": True,
            "multiplier": None,
            "underlying_issuer": None,
            "contract_month": None,
            "company_name": inst.name,
            "smart_available": True,
            "exchange": "SMART",
            "category": inst.industry,
        }


def _search_item(inst: Instrument, conid: str, exchange: str) -> dict:
    return {
        "conid": conid,
        "companyHeader": f"{inst.name} - {exchange}",
        "companyName": inst.name,
        "symbol": inst.symbol,
        "description": exchange,
        "restricted": None,
        "fop": None,
        "opt": None,
        "war": None,
        "sections": [{"secType": "STK"}],
    }
