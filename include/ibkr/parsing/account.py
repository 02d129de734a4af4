"""Pure parsers for session, account, contract-lookup and portfolio payloads (§2, §4, §7)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from include.ibkr import errors as E
from include.ibkr.models import (
    AccountSummary,
    AuthStatus,
    BrokerageAccounts,
    Contract,
    LedgerEntry,
    Position,
    TickleResponse,
)
from include.ibkr.parsing.common import expect_dict, expect_list, malformed, parse_error, to_float, to_int, to_str

US_EXCHANGES = frozenset({
    "NASDAQ", "NYSE", "ARCA", "NYSE ARCA", "AMEX", "NYSE AMERICAN", "BATS", "CBOE", "IEX",
})  # fmt: skip


# ---------------------------------------------------------------- session (§2, §7.1)
def parse_auth_status(payload: Any, endpoint: str = "/iserver/auth/status") -> AuthStatus:
    data = expect_dict(payload, endpoint)
    server = data.get("serverInfo") or {}  # absent while unauthenticated (§2.1)
    return AuthStatus(
        authenticated=bool(data.get("authenticated")),
        competing=bool(data.get("competing")),
        connected=bool(data.get("connected")),
        message=str(data.get("message") or ""),
        server_name=to_str(server.get("serverName")),
        server_version=to_str(server.get("serverVersion")),
    )


def parse_tickle(payload: Any) -> TickleResponse:
    data = expect_dict(payload, "/tickle")
    auth = (data.get("iserver") or {}).get("authStatus")
    return TickleResponse(
        session=to_str(data.get("session")),
        sso_expires_ms=to_int(data.get("ssoExpires"), "ssoExpires", "/tickle"),
        collision=bool(data.get("collission", data.get("collision", False))),  # sic, §2.2
        user_id=to_int(data.get("userId"), "userId", "/tickle"),
        auth_status=parse_auth_status(auth, "/tickle") if isinstance(auth, dict) else None,
    )


def parse_accounts(payload: Any) -> BrokerageAccounts:
    endpoint = "/iserver/accounts"
    data = expect_dict(payload, endpoint)
    accounts = data.get("accounts")
    if not isinstance(accounts, list) or not all(isinstance(a, str) for a in accounts):
        raise malformed(endpoint, "'accounts' is not a list of account ids", payload)
    selected = to_str(data.get("selectedAccount")) or (accounts[0] if accounts else None)
    is_paper = data.get("isPaper")
    if not isinstance(is_paper, bool):  # paper account ids start with "DU" (§7.1)
        is_paper = bool(selected and selected.startswith("DU"))
    return BrokerageAccounts(
        accounts=accounts,
        selected_account=selected,
        is_paper=is_paper,
        server_name=to_str((data.get("serverInfo") or {}).get("serverName")),
    )


# ---------------------------------------------------------------- contracts (§4)
def parse_secdef_search(payload: Any, symbol: str) -> Contract:
    endpoint = "/iserver/secdef/search"
    if isinstance(payload, dict) and "error" in payload:
        err = parse_error(200, json.dumps(payload), endpoint)
        if isinstance(err, E.BadRequestError | E.NoDataError):
            raise E.UnknownSymbolError(symbol, str(payload["error"]), endpoint=endpoint)
        raise err
    hits = [
        h for h in expect_list(payload, endpoint)
        if isinstance(h, dict) and str(h.get("symbol", "")).upper() == symbol
        and any(isinstance(s, dict) and s.get("secType") == "STK" for s in h.get("sections") or [])
    ]  # fmt: skip
    if not hits:
        reason = "no STK hit with that exact symbol in secdef/search"
        raise E.UnknownSymbolError(symbol, reason, endpoint=endpoint)
    # §4.1: one symbol can return several underlyings; prefer the US listing.
    best = next((h for h in hits if str(h.get("description", "")).upper() in US_EXCHANGES), hits[0])
    conid = to_int(best.get("conid"), "conid", endpoint)
    if conid is None:
        raise malformed(endpoint, f"hit for {symbol} has no conid", best)
    return Contract(
        symbol=symbol, conid=conid, exchange=to_str(best.get("description")),
        company_name=to_str(best.get("companyName")),
    )  # fmt: skip


def parse_trsrv_stocks(payload: Any, symbol: str) -> Contract:
    endpoint = "/trsrv/stocks"
    data = expect_dict(payload, endpoint)
    instruments = data.get(symbol) or []
    if not isinstance(instruments, list):
        raise malformed(endpoint, f"entry for {symbol} is not a list", payload)
    # §4.2: several instruments per symbol and a conid per market; keep US listings (ibind does too).
    ranked = sorted(
        (i for i in instruments if isinstance(i, dict)), key=lambda i: i.get("assetClass") != "STK"
    )
    for inst in ranked:
        for c in inst.get("contracts") or []:
            if isinstance(c, dict) and c.get("isUS") is True:
                conid = to_int(c.get("conid"), "conid", endpoint)
                if conid is not None:
                    return Contract(
                        symbol=symbol, conid=conid, exchange=to_str(c.get("exchange")),
                        company_name=to_str(inst.get("name")),
                    )  # fmt: skip
    raise E.UnknownSymbolError(symbol, "no US listing in trsrv/stocks", endpoint=endpoint)


# ---------------------------------------------------------------- portfolio (§7.3-7.5)
def parse_positions(payload: Any, endpoint: str = "/portfolio/positions") -> list[Position]:
    out: list[Position] = []
    for item in expect_list(payload, endpoint):
        if not isinstance(item, dict):
            raise malformed(endpoint, "position is not an object", item)
        conid = to_int(item.get("conid"), "conid", endpoint)
        quantity = to_float(item.get("position"), "position", endpoint)
        if conid is None or quantity is None:
            raise malformed(endpoint, "position without conid or position size", item)
        out.append(Position(
            account_id=to_str(item.get("acctId")), conid=conid,
            symbol=to_str(item.get("ticker")) or to_str(item.get("contractDesc")) or str(conid),
            quantity=quantity, asset_class=to_str(item.get("assetClass")),
            market_price=to_float(item.get("mktPrice"), "mktPrice", endpoint),
            market_value=to_float(item.get("mktValue"), "mktValue", endpoint),
            avg_cost=to_float(item.get("avgCost"), "avgCost", endpoint),
            avg_price=to_float(item.get("avgPrice"), "avgPrice", endpoint),
            unrealized_pnl=to_float(item.get("unrealizedPnl"), "unrealizedPnl", endpoint),
            realized_pnl=to_float(item.get("realizedPnl"), "realizedPnl", endpoint),
            currency=to_str(item.get("currency")), listing_exchange=to_str(item.get("listingExchange")),
        ))  # fmt: skip
    return out


def parse_ledger(payload: Any, endpoint: str = "/portfolio/ledger") -> list[LedgerEntry]:
    out: list[LedgerEntry] = []
    for key, row in expect_dict(payload, endpoint).items():
        if not isinstance(row, dict):
            raise malformed(endpoint, f"ledger entry {key!r} is not an object", row)
        ts = to_float(row.get("timestamp"), "timestamp", endpoint)
        try:  # §7.5: the ledger timestamp is epoch SECONDS (everything else is ms)
            stamp = datetime.fromtimestamp(ts, tz=UTC) if ts is not None else None
        except (OverflowError, OSError, ValueError):
            raise malformed(endpoint, f"ledger timestamp {ts!r} is not epoch seconds", row) from None
        f = lambda name, r=row: to_float(r.get(name), name, endpoint)  # noqa: E731
        out.append(LedgerEntry(
            currency=key, cash_balance=f("cashbalance"), settled_cash=f("settledcash"),
            net_liquidation=f("netliquidationvalue"), stock_market_value=f("stockmarketvalue"),
            unrealized_pnl=f("unrealizedpnl"), realized_pnl=f("realizedpnl"), timestamp=stamp,
        ))  # fmt: skip
    return out


def parse_account_summary(payload: Any, endpoint: str = "/portfolio/summary") -> AccountSummary:
    values: dict[str, float | None] = {}
    account_id = None
    for key, row in expect_dict(payload, endpoint).items():
        if not isinstance(row, dict):
            continue  # §7.4 values are {amount, currency, isNull, ...}; skip anything else
        if key == "accountcode":
            account_id = to_str(row.get("value"))
            continue
        values[key] = None if row.get("isNull") else to_float(row.get("amount"), key, endpoint)
    return AccountSummary(account_id=account_id, values=values)
