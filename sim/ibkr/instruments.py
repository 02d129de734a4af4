"""Instrument universe: built-in US stocks with real conids, CSV-replay symbols and synthetic symbols (§4)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

from sim.ibkr.config import SimulatorConfig


@dataclass(frozen=True)
class Instrument:
    symbol: str
    conid: int
    name: str
    exchange: str  # primary listing exchange
    kind: str = "STK"  # positions `type`: STK or ETF
    industry: str = "Technology"
    csv_path: Path | None = None  # set when bars come from CSV replay


# (symbol, conid, name, exchange, kind, industry); conids of the first ten are the real ones (§4.2).
BUILTINS: tuple[tuple[str, int, str, str, str, str], ...] = (
    ("AAPL", 265598, "APPLE INC", "NASDAQ", "STK", "Technology"),
    ("MSFT", 272093, "MICROSOFT CORP", "NASDAQ", "STK", "Technology"),
    ("SPY", 756733, "SPDR S&P 500 ETF TRUST", "ARCA", "ETF", "Funds"),
    ("GOOG", 208813720, "ALPHABET INC-CL C", "NASDAQ", "STK", "Communications"),
    ("META", 107113386, "META PLATFORMS INC-CLASS A", "NASDAQ", "STK", "Communications"),
    ("SCHW", 11905, "SCHWAB (CHARLES) CORP", "NYSE", "STK", "Financial"),
    ("IBM", 8314, "INTL BUSINESS MACHINES CORP", "NYSE", "STK", "Technology"),
    ("TSLA", 76792991, "TESLA INC", "NASDAQ", "STK", "Consumer, Cyclical"),
    ("NVDA", 4815747, "NVIDIA CORP", "NASDAQ", "STK", "Technology"),
    ("AMZN", 3691937, "AMAZON.COM INC", "NASDAQ", "STK", "Communications"),
    ("QQQ", 320227571, "INVESCO QQQ TRUST SERIES 1", "NASDAQ", "ETF", "Funds"),
    ("IWM", 9579970, "ISHARES RUSSELL 2000 ETF", "ARCA", "ETF", "Funds"),
    ("JPM", 1520593, "JPMORGAN CHASE & CO", "NYSE", "STK", "Financial"),
    ("BAC", 10098, "BANK OF AMERICA CORP", "NYSE", "STK", "Financial"),
    ("XOM", 13977, "EXXON MOBIL CORP", "NYSE", "STK", "Energy"),
    ("KO", 8894, "COCA-COLA CO/THE", "NYSE", "STK", "Consumer, Non-cyclical"),
    ("JNJ", 8719, "JOHNSON & JOHNSON", "NYSE", "STK", "Consumer, Non-cyclical"),
    ("WMT", 13824, "WALMART INC", "NYSE", "STK", "Consumer, Cyclical"),
    ("PG", 10291, "PROCTER & GAMBLE CO/THE", "NYSE", "STK", "Consumer, Non-cyclical"),
    ("INTC", 270639, "INTEL CORP", "NASDAQ", "STK", "Technology"),
    ("CSCO", 268084, "CISCO SYSTEMS INC", "NASDAQ", "STK", "Communications"),
    ("AMD", 4391, "ADVANCED MICRO DEVICES", "NASDAQ", "STK", "Technology"),
    ("NFLX", 15124833, "NETFLIX INC", "NASDAQ", "STK", "Communications"),
    ("V", 49462172, "VISA INC-CLASS A SHARES", "NYSE", "STK", "Financial"),
    ("DIS", 6459, "WALT DISNEY CO/THE", "NYSE", "STK", "Communications"),
)
# Non-US listings returned next to the US one so that clients must filter (§4.1 "several hits", §4.2).
FOREIGN_LISTINGS: dict[str, tuple[tuple[int, str], ...]] = {"AAPL": ((38708077, "MEXI"),)}
CHINESE_NAMES = {"AAPL": "&#x82F9;&#x679C;&#x516C;&#x53F8;"}  # HTML-entity encoded, as in real data (§4.2)
SYNTHETIC_CONID_BASE = 900_000_000
_CSV_CONID_BASE = 800_000_000


class InstrumentRegistry:
    """Lookup by symbol and conid; formats the contract-search endpoints (§4)."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.by_symbol: dict[str, Instrument] = {}
        for symbol, conid, name, exchange, kind, industry in BUILTINS:
            self._add(Instrument(symbol, conid, name, exchange, kind, industry))
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
        q = query.upper()
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
