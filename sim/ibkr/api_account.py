"""Accounts and portfolio: `/iserver/accounts` (priming), `/portfolio/*`, P&L (§7)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sim.ibkr.api_common import sim_of
from sim.ibkr.session import SERVER_VERSION
from sim.ibkr.state import SimState, error

_ACCT_PROPS = {"hasChildAccounts": False, "supportsCashQty": True, "noFXConv": False, "isProp": False,
               "supportsFractions": True, "allowCustomerTime": False}
_FEATURES = {"showGFIS": True, "showEUCostReport": False, "allowEventContract": True, "allowFXConv": True,
             "allowFinancialLens": False, "allowMTA": True, "allowTypeAhead": True, "allowEventTrading": True,
             "snapshotRefreshTimeout": 30, "liteUser": False, "showWebNews": True, "research": True,
             "debugPnl": True, "showTaxOpt": True, "showImpactDashboard": True, "allowDynAccount": False,
             "allowCrypto": False, "allowFA": False, "allowLiteUnderlyings": False,
             "restrictTradeSubscription": False, "showUkUserLabels": False, "sideBySide": True}


def unknown_account(sim: SimState, request: Request) -> JSONResponse | None:
    acct = request.path_params.get("acct")
    if acct is not None and acct != sim.cfg.account_id:
        return error(400, f"Account {acct} is not valid for this user")  # status/text UNCONFIRMED
    return None


async def iserver_accounts(request: Request) -> JSONResponse:
    """§7.1; calling it primes the brokerage session (§3.4)."""
    sim = sim_of(request)
    sim.session.prime(sim.now())
    acct = sim.cfg.account_id
    return JSONResponse({
        "accounts": [acct], "acctProps": {acct: _ACCT_PROPS}, "aliases": {acct: acct},
        "allowFeatures": _FEATURES,
        "chartPeriods": {"STK": ["*"], "CFD": ["*"], "OPT": ["2h", "1d", "2d", "1w", "1m"], "FUT": ["*"],
                         "CASH": ["*"], "IND": ["*"], "BOND": ["*"], "FUND": ["*"]},
        "groups": [], "profiles": [], "selectedAccount": acct,
        "serverInfo": {"serverName": sim.cfg.server_name, "serverVersion": SERVER_VERSION},
        "sessionId": sim.session.session_id, "isFt": False, "isPaper": True,
    })


async def portfolio_accounts(request: Request) -> JSONResponse:
    sim = sim_of(request)
    return JSONResponse(sim.portfolio.accounts(sim.now()))


async def positions(request: Request) -> JSONResponse:
    sim = sim_of(request)
    if (bad := unknown_account(sim, request)) is not None:
        return bad
    page = request.path_params["page"]
    if not page.isdigit():
        return error(400, f"invalid page: {page}")
    now = sim.now()
    sim.sync_orders(now)
    return JSONResponse(sim.portfolio.positions_page(int(page), sim.mark(now)))


async def positions_invalidate(request: Request) -> JSONResponse:
    # Positions are always computed fresh here, so there is no cache to drop; body UNCONFIRMED.
    sim = sim_of(request)
    if (bad := unknown_account(sim, request)) is not None:
        return bad
    return JSONResponse({"message": "success"})


async def summary(request: Request) -> JSONResponse:
    sim = sim_of(request)
    if (bad := unknown_account(sim, request)) is not None:
        return bad
    now = sim.now()
    sim.sync_orders(now)
    return JSONResponse(sim.portfolio.summary(sim.mark(now), now))


async def ledger(request: Request) -> JSONResponse:
    sim = sim_of(request)
    if (bad := unknown_account(sim, request)) is not None:
        return bad
    now = sim.now()
    sim.sync_orders(now)
    return JSONResponse(sim.portfolio.ledger(sim.mark(now), now))


async def pnl_partitioned(request: Request) -> JSONResponse:
    """§7.6 `/iserver/account/pnl/partitioned`: `{"upnl": {"<acct>.Core": {...}}}` (shape from the spec)."""
    sim = sim_of(request)
    now = sim.now()
    sim.sync_orders(now)
    mark = sim.mark(now)
    t = sim.portfolio.totals(mark)
    daily = 0.0
    for p in sim.portfolio.open_positions():
        q = sim.quote(p.inst, now)
        daily += p.qty * (q.last - q.prior_close) if q else 0.0
    row = {"rowType": 1, "dpl": round(daily, 2), "nl": round(t["net"], 2), "upl": round(t["unrealized"], 2),
           "el": round(t["net"] - 0.25 * t["gross"], 2), "mv": round(t["market"], 2)}
    return JSONResponse({"upnl": {f"{sim.cfg.account_id}.Core": row}})


ROUTES = [
    Route("/iserver/accounts", iserver_accounts, methods=["GET"]),
    Route("/portfolio/accounts", portfolio_accounts, methods=["GET"]),
    Route("/portfolio/{acct}/positions/invalidate", positions_invalidate, methods=["POST"]),
    Route("/portfolio/{acct}/positions/{page}", positions, methods=["GET"]),
    Route("/portfolio/{acct}/summary", summary, methods=["GET"]),
    Route("/portfolio/{acct}/ledger", ledger, methods=["GET"]),
    Route("/iserver/account/pnl/partitioned", pnl_partitioned, methods=["GET"]),
]
