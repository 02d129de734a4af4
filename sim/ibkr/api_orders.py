"""Order endpoints: place, reply, suppress, live orders, status, cancel, what-if, trades (§8)."""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sim.ibkr import order_views
from sim.ibkr.api_account import unknown_account
from sim.ibkr.api_common import json_body, sim_of
from sim.ibkr.exchange import NEW_YORK
from sim.ibkr.orders import WORKING, OrderError
from sim.ibkr.state import error

_FILTER_ALIASES = {"sortbytime": "sort"}


def _orders_of(body: object) -> list | None:
    """Both `{"orders": [...]}` and a bare array are accepted (§8.1)."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and isinstance(body.get("orders"), list):
        return body["orders"]
    return None


async def place_orders(request: Request) -> JSONResponse:
    sim = sim_of(request)
    if (bad := unknown_account(sim, request)) is not None:
        return bad
    try:
        orders = _orders_of(await json_body(request))
        if orders is None:
            return error(400, 'body must be {"orders": [...]} or a JSON array of orders')
        now = sim.now()
        result = sim.orders.place(request.path_params["acct"], orders, now, lambda i: sim.last_price(i, now),
                                  sim.cfg.questions, sim.venue(now), sim.session.suppressed_questions)
    except ValueError as exc:  # OrderError and BodyError
        return error(400, str(exc))
    return JSONResponse(result)


async def reply(request: Request) -> JSONResponse:
    """§8.2: confirm -> next question or the accepted order; `{"confirmed": false}` -> 400."""
    sim = sim_of(request)
    try:
        body = await json_body(request)
        confirmed = body.get("confirmed") if isinstance(body, dict) else None
        if not isinstance(confirmed, bool):
            return error(400, 'body must be {"confirmed": true|false}')
        now = sim.now()
        return JSONResponse(sim.orders.reply(request.path_params["reply_id"], confirmed, now, sim.venue(now)))
    except OrderError as exc:
        return error(400, str(exc), with_code=str(exc) == "order not confirmed")
    except ValueError as exc:
        return error(400, str(exc))


async def suppress(request: Request) -> JSONResponse:
    """§8.2: the ids are not asked again in this brokerage session (a new session asks them again)."""
    sim = sim_of(request)
    try:
        body = await json_body(request)
    except ValueError as exc:
        return error(400, str(exc))
    ids = body.get("messageIds") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > 51:
        return error(400, 'body must be {"messageIds": [up to 51 ids]}')
    sim.session.suppressed_questions.update(ids)
    return JSONResponse({"status": "submitted"})


async def suppress_reset(request: Request) -> JSONResponse:
    sim_of(request).session.suppressed_questions.clear()
    return JSONResponse({"status": "submitted"})


async def live_orders(request: Request) -> JSONResponse:
    """§8.3. The first call after priming is an empty pre-flight whatever `force` says (ibind docstring)."""
    sim = sim_of(request)
    session = sim.session
    if not session.live_orders_ready:
        session.live_orders_ready = True
        return JSONResponse({"orders": [], "snapshot": False})
    now = sim.now()
    sim.sync_orders(now)
    raw_filters = request.query_params.get("filters", "").split(",")
    names = (x.strip().lower().replace("_", "") for x in raw_filters)  # "pre_submitted" or "PreSubmitted"
    wanted = {_FILTER_ALIASES.get(f, f) for f in names if f}
    statuses = wanted - {"sort"}
    # Orders of the current brokerage session, plus anything still working (§8.3).
    orders = [o for o in sim.orders.orders.values()
              if o.updated_at >= session.started_at or o.status in WORKING]
    if statuses:
        orders = [o for o in orders if o.status.lower() in statuses]
    if "sort" in wanted:
        orders.sort(key=lambda o: o.updated_at, reverse=True)
    return JSONResponse({"orders": [order_views.live_item(o) for o in orders], "snapshot": True})


async def order_status(request: Request) -> JSONResponse:
    sim = sim_of(request)
    raw = request.path_params["order_id"]
    order = sim.orders.orders.get(int(raw)) if raw.lstrip("-").isdigit() else None
    if order is None:
        return error(400, f"OrderID {raw} doesn't exist")  # status/text UNCONFIRMED
    sim.sync_orders(sim.now())
    return JSONResponse(order_views.status_item(order))


async def cancel_order(request: Request) -> JSONResponse:
    sim = sim_of(request)
    if (bad := unknown_account(sim, request)) is not None:
        return bad
    raw = request.path_params["order_id"]
    if not raw.lstrip("-").isdigit():
        return error(400, f"invalid order id: {raw}")
    now = sim.now()
    sim.sync_orders(now)  # an order that filled before the cancel arrived cannot be cancelled
    try:
        return JSONResponse(sim.orders.cancel(int(raw), request.path_params["acct"], now))
    except OrderError as exc:
        return error(400, str(exc))


async def modify_order(request: Request) -> JSONResponse:
    sim = sim_of(request)
    if (bad := unknown_account(sim, request)) is not None:
        return bad
    raw = request.path_params["order_id"]
    try:
        body = await json_body(request)
        if not raw.isdigit() or not isinstance(body, dict):
            return error(400, "modify takes one order object for a numeric order id")
        now = sim.now()
        sim.sync_orders(now)
        acct = request.path_params["acct"]
        return JSONResponse(sim.orders.modify(int(raw), acct, body, now, sim.venue(now)))
    except ValueError as exc:
        return error(400, str(exc))


async def whatif(request: Request) -> JSONResponse:
    sim = sim_of(request)
    if (bad := unknown_account(sim, request)) is not None:
        return bad
    try:
        orders = _orders_of(await json_body(request))
        if not orders:
            return error(400, 'body must be {"orders": [...]} or a JSON array of orders')
        req = sim.orders.validate(orders[0], request.path_params["acct"])
    except ValueError as exc:
        return error(400, str(exc))
    now = sim.now()
    market = sim.last_price(req["inst"], now) or 0.0
    equity = sim.portfolio.totals(sim.mark(now))["net"]
    return JSONResponse(order_views.whatif(req, market, sim.portfolio, equity, sim.commission(req["qty"])))


async def trades(request: Request) -> JSONResponse:
    """§8.9: executions of today (New York) and up to `days` - 1 days before (max 7)."""
    sim = sim_of(request)
    raw = request.query_params.get("days", "1")
    days = min(max(int(raw), 1), 7) if raw.isdigit() else 1
    now = sim.now()
    sim.sync_orders(now)
    local = now.astimezone(NEW_YORK)
    since = local.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)
    acct = sim.cfg.account_id
    recent = [ex for ex in sim.portfolio.executions if ex.at >= since]
    return JSONResponse([order_views.trade_item(ex, acct) for ex in recent])


ROUTES = [
    Route("/iserver/account/orders", live_orders, methods=["GET"]),
    Route("/iserver/account/trades", trades, methods=["GET"]),
    Route("/iserver/account/order/status/{order_id}", order_status, methods=["GET"]),
    Route("/iserver/account/{acct}/orders", place_orders, methods=["POST"]),
    Route("/iserver/account/{acct}/orders/whatif", whatif, methods=["POST"]),
    Route("/iserver/account/{acct}/order/{order_id}", cancel_order, methods=["DELETE"]),
    Route("/iserver/account/{acct}/order/{order_id}", modify_order, methods=["POST"]),
    Route("/iserver/reply/{reply_id}", reply, methods=["POST"]),
    Route("/iserver/questions/suppress", suppress, methods=["POST"]),
    Route("/iserver/questions/suppress/reset", suppress_reset, methods=["POST"]),
]
