"""Cash, positions and executions of the single paper account, and their portfolio views (§7.2-7.5)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sim.ibkr import formats
from sim.ibkr.instruments import Instrument

PAGE_SIZE = 100  # §7.3: "up to 100" per page in current builds (30 in the old spec)
Mark = Callable[[Instrument], float]


@dataclass
class Position:
    inst: Instrument
    qty: float = 0.0
    avg_cost: float = 0.0
    realized: float = 0.0


@dataclass(frozen=True)
class Execution:
    execution_id: str
    order_id: int
    inst: Instrument
    side: str  # BUY / SELL
    qty: float
    price: float
    commission: float
    at: datetime
    order_ref: str | None


class Portfolio:
    def __init__(self, account_id: str, cash: float) -> None:
        self.account_id = account_id
        self.cash = cash
        self.positions: dict[int, Position] = {}
        self.executions: list[Execution] = []

    def seed_position(self, inst: Instrument, qty: float, avg: float) -> None:
        self.positions[inst.conid] = Position(inst, qty, avg)

    def set_position(self, inst: Instrument, qty: float, avg: float) -> None:
        """Holding changed outside the API (admin injection): no execution, cash untouched."""
        pos = self.positions.setdefault(inst.conid, Position(inst))
        pos.qty, pos.avg_cost = qty, (avg if qty else 0.0)

    def apply_fill(self, ex: Execution) -> None:
        signed = ex.qty if ex.side == "BUY" else -ex.qty
        self.cash -= signed * ex.price + ex.commission
        pos = self.positions.setdefault(ex.inst.conid, Position(ex.inst))
        if pos.qty == 0 or (pos.qty > 0) == (signed > 0):  # opening or adding: average the cost
            pos.avg_cost = (pos.avg_cost * abs(pos.qty) + ex.price * ex.qty) / (abs(pos.qty) + ex.qty)
        else:  # reducing or flipping: realise P&L on the closed part
            closed = min(abs(signed), abs(pos.qty))
            pos.realized += closed * (ex.price - pos.avg_cost) * (1 if pos.qty > 0 else -1)
            if abs(signed) > abs(pos.qty):
                pos.avg_cost = ex.price
        pos.qty += signed
        pos.realized -= ex.commission
        if abs(pos.qty) < 1e-9:
            pos.qty, pos.avg_cost = 0.0, 0.0
        self.executions.append(ex)

    def open_positions(self) -> list[Position]:
        return sorted((p for p in self.positions.values() if p.qty != 0), key=lambda p: p.inst.symbol)

    def totals(self, mark: Mark) -> dict[str, float]:
        market = sum(p.qty * mark(p.inst) for p in self.open_positions())
        gross = sum(abs(p.qty * mark(p.inst)) for p in self.open_positions())
        unrealized = sum(p.qty * (mark(p.inst) - p.avg_cost) for p in self.open_positions())
        realized = sum(p.realized for p in self.positions.values())
        return {"market": market, "gross": gross, "unrealized": unrealized, "realized": realized,
                "net": self.cash + market}

    # --- views ---------------------------------------------------------------------------------
    def positions_page(self, page: int, mark: Mark) -> list[dict]:
        """§7.3 items: JSON numbers (unlike the snapshot); `[]` past the last page."""
        items = self.open_positions()[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
        return [self._position_item(p, mark(p.inst)) for p in items]

    def _position_item(self, p: Position, price: float) -> dict:
        inst = p.inst
        return {
            "acctId": self.account_id, "conid": inst.conid, "contractDesc": inst.symbol,
            "assetClass": "STK", "position": float(p.qty), "mktPrice": price,
            "mktValue": round(p.qty * price, 2), "currency": "USD", "avgCost": round(p.avg_cost, 6),
            "avgPrice": round(p.avg_cost, 6), "realizedPnl": round(p.realized, 2),
            "unrealizedPnl": round(p.qty * (price - p.avg_cost), 2), "exchs": None, "expiry": None,
            "putOrCall": None, "multiplier": 0.0, "strike": "0", "exerciseStyle": None, "conExchMap": [],
            "undConid": 0, "ticker": inst.symbol, "name": inst.name, "fullName": inst.symbol,
            "listingExchange": inst.exchange, "countryCode": "US", "type": inst.kind, "isUS": True,
            "hasOptions": True, "incrementRules": [{"increment": 0.01, "lowerEdge": 0.0}],
            "displayRule": {"magnification": 0,
                            "displayRuleStep": [{"decimalDigits": 2, "lowerEdge": 0.0, "wholeDigits": 4}]},
            "sector": inst.industry, "group": None, "sectorGroup": None, "allExchanges": "SMART,NYSE,ARCA",
            "isEventContract": False, "lastTradingDay": None, "pageSize": PAGE_SIZE, "time": 30, "model": "",
        }

    def summary(self, mark: Mark, now: datetime) -> dict:
        """§7.4: lower-case keys, each `{amount, currency, isNull, timestamp, value, severity}`."""
        t = self.totals(mark)
        init = maint = 0.25 * t["gross"]  # Reg T-style margin, plausible for a paper margin account
        values = {
            "netliquidation": t["net"], "totalcashvalue": self.cash, "settledcash": self.cash,
            "accruedcash": 0.0, "grosspositionvalue": t["gross"], "equitywithloanvalue": t["net"],
            "initmarginreq": init, "maintmarginreq": maint, "availablefunds": t["net"] - init,
            "excessliquidity": t["net"] - maint, "buyingpower": 4 * (t["net"] - init),
            "regtequity": t["net"], "regtmargin": 0.5 * t["gross"],
            "sma": max(t["net"] - 0.5 * t["gross"], 0.0),
            "cushion": (t["net"] - maint) / t["net"] if t["net"] else 0.0,
            "leverage-s": t["gross"] / t["net"] if t["net"] else 0.0, "daytradesremaining": -1.0,
        }
        ms = formats.epoch_ms(now)
        out = {"accountcode": {"amount": 0.0, "currency": None, "isNull": False, "timestamp": ms,
                               "value": self.account_id, "severity": 0}}
        for key, amount in values.items():
            entry = {"amount": round(amount, 2), "currency": "USD", "isNull": False, "timestamp": ms,
                     "value": None, "severity": 0}
            out[key] = entry
            if key not in ("cushion", "leverage-s", "daytradesremaining"):
                out[f"{key}-s"] = dict(entry)  # §7.4 securities-segment variant
        return out

    def ledger(self, mark: Mark, now: datetime) -> dict:
        """§7.5: keyed by currency plus BASE; `timestamp` in SECONDS, unlike everything else."""
        t = self.totals(mark)
        row = {
            "commoditymarketvalue": 0.0, "futuremarketvalue": 0.0, "settledcash": round(self.cash, 2),
            "exchangerate": 1, "sessionid": 1, "cashbalance": round(self.cash, 2),
            "corporatebondsmarketvalue": 0.0, "warrantsmarketvalue": 0.0,
            "netliquidationvalue": round(t["net"], 2), "interest": 0.0,
            "unrealizedpnl": round(t["unrealized"], 2), "stockmarketvalue": round(t["market"], 2),
            "moneyfunds": 0.0, "realizedpnl": round(t["realized"], 2), "funds": 0.0,
            "issueroptionsmarketvalue": 0.0, "acctcode": self.account_id, "cashbalancefxsegment": 0.0,
            "futureoptionmarketvalue": 0.0, "stockoptionmarketvalue": 0.0, "tbondsmarketvalue": 0.0,
            "tbillsmarketvalue": 0.0, "cryptocurrencyvalue": 0.0, "futuresonlypnl": 0.0, "dividends": 0.0,
            "key": "LedgerList", "severity": 0, "timestamp": int(now.timestamp()),
        }
        return {
            "USD": {**row, "currency": "USD", "secondkey": "USD", "endofbundle": 1},
            "BASE": {**row, "currency": "BASE", "secondkey": "BASE"},
        }

    def accounts(self, now: datetime) -> list[dict]:
        """§7.2 `/portfolio/accounts`: an array; paper accounts have `type: "DEMO"`."""
        acct = self.account_id
        return [{
            "id": acct, "PrepaidCrypto-Z": False, "PrepaidCrypto-P": False, "brokerageAccess": True,
            "accountId": acct, "accountVan": acct, "accountTitle": "Simulated Paper Account",
            "displayName": acct, "accountAlias": None, "accountStatus": formats.epoch_ms(now) - 86_400_000,
            "currency": "USD", "type": "DEMO", "tradingType": "STKNOPT", "businessType": "INDEPENDENT",
            "ibEntity": "IBLLC-US", "faclient": False, "clearingStatus": "O", "covestor": False,
            "noClientTrading": False, "trackVirtualFXPortfolio": False,
            "parent": {"mmc": [], "accountId": "", "isMParent": False, "isMChild": False,
                       "isMultiplex": False},
            "desc": acct,
        }]
