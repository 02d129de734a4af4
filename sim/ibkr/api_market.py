"""Contract lookup (§4), snapshots (§5) and historical bars (§6.1)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sim.ibkr import formats, history
from sim.ibkr.api_common import json_body, sim_of
from sim.ibkr.quotes import DEFAULT_FIELDS, SERVER_ID, snapshot_fields
from sim.ibkr.state import error


async def secdef_search(request: Request) -> JSONResponse:
    """GET with query params or POST with a JSON body (§4.1); unknown symbols give `[]`."""
    params: dict = dict(request.query_params)
    if request.method == "POST":
        try:
            body = await json_body(request, default={})
        except ValueError as exc:
            return error(400, str(exc))
        params = body if isinstance(body, dict) else {}
    symbol = str(params.get("symbol") or "")
    if not symbol:
        return error(400, "symbol parameter is required")
    by_name = str(params.get("name", "false")).lower() == "true"
    sec_type = str(params.get("secType") or "STK")
    return JSONResponse(sim_of(request).registry.search(symbol, by_name, sec_type))


async def trsrv_stocks(request: Request) -> JSONResponse:
    symbols = [s for s in request.query_params.get("symbols", "").split(",") if s]
    if not symbols:
        return error(400, "symbols parameter is required")
    return JSONResponse(sim_of(request).registry.stocks(symbols))


async def contract_info(request: Request) -> JSONResponse:
    sim = sim_of(request)
    raw = request.path_params["conid"]
    inst = sim.registry.by_id(int(raw)) if raw.isdigit() else None
    if inst is None:
        # 500 is among the §4.3 codes; the text is UNCONFIRMED.
        return error(500, f"Contract info for conid {raw} is unavailable")
    return JSONResponse(sim.registry.contract_info(inst))


async def snapshot(request: Request) -> JSONResponse:
    """§5: the first request per conid is a pre-flight (identifiers only); values are strings after."""
    sim = sim_of(request)
    try:
        conids = [int(c) for c in request.query_params.get("conids", "").split(",") if c.strip()]
    except ValueError:
        return error(400, "conids must be a comma-separated list of integers")
    if not conids:
        return error(400, "conids parameter is required")
    fields = {f.strip() for f in request.query_params.get("fields", "").split(",") if f.strip()}
    now = sim.now()
    subscriptions = sim.session.subscriptions
    out: list[dict] = []
    for conid in conids:
        ids = {"conid": conid, "conidEx": str(conid)}
        if conid not in subscriptions:
            subscriptions[conid] = set(fields or DEFAULT_FIELDS)
            out.append(ids)
            continue
        subscriptions[conid] |= fields  # fields named earlier stay attached to the conid (§5)
        inst = sim.registry.by_id(conid)
        if inst is None:
            out.append(ids)  # unknown conid: never any data (real behaviour UNCONFIRMED)
            continue
        values = snapshot_fields(sim.quote(inst, now), inst, subscriptions[conid], inst.symbol in sim.halted)
        out.append({**values, "_updated": formats.epoch_ms(now), **ids, "server_id": SERVER_ID})
    return JSONResponse(out)


async def unsubscribe(request: Request) -> JSONResponse:
    sim = sim_of(request)
    try:
        body = await json_body(request)
        conid = int(body["conid"])
    except (ValueError, KeyError, TypeError):
        return error(400, 'body must be {"conid": <int>}')
    if sim.session.subscriptions.pop(conid, None) is None:
        return error(404, f"conid {conid} is not subscribed")  # §5: 404 if not subscribed
    return JSONResponse({"success": True})  # success body UNCONFIRMED


async def unsubscribe_all(request: Request) -> JSONResponse:
    sim_of(request).session.subscriptions.clear()
    return JSONResponse({"confirmed": True})


async def market_history(request: Request) -> Response:
    """§6.1, with the 5-concurrent-requests cap (429) while rate limits are on."""
    sim = sim_of(request)
    stats, cfg = sim.stats, sim.cfg
    stats.history_requests += 1
    if cfg.rate_limits and stats.history_inflight >= cfg.history_max_concurrent:
        stats.history_429 += 1
        return error(429, "Too many requests")
    stats.history_inflight += 1
    stats.history_max_concurrent = max(stats.history_max_concurrent, stats.history_inflight)
    try:
        if cfg.history_latency_ms:
            await asyncio.sleep(cfg.history_latency_ms / 1000)
        raw = request.query_params.get("conid", "")
        if not raw.isdigit():
            return error(400, "conid parameter is required and must be an integer")
        inst = sim.registry.by_id(int(raw))
        if inst is None:
            return error(400, f"invalid conid: {raw}")  # real status/text for unknown conids UNCONFIRMED
        try:
            body = history.build(sim.bars, inst, dict(request.query_params), sim.now(), next(sim.history_ids))
        except history.HistoryError as exc:
            return error(400, str(exc))
        if body is None:
            return JSONResponse({"error": "No data."})  # what ibind sees; HTTP 200 is UNCONFIRMED (§6.1)
        return Response(body, media_type="application/json")
    finally:
        stats.history_inflight -= 1


ROUTES = [
    Route("/iserver/secdef/search", secdef_search, methods=["GET", "POST"]),
    Route("/trsrv/stocks", trsrv_stocks, methods=["GET"]),
    Route("/iserver/contract/{conid}/info", contract_info, methods=["GET"]),
    Route("/iserver/marketdata/snapshot", snapshot, methods=["GET"]),
    Route("/iserver/marketdata/history", market_history, methods=["GET"]),
    Route("/iserver/marketdata/unsubscribe", unsubscribe, methods=["POST"]),
    Route("/iserver/marketdata/unsubscribeall", unsubscribe_all, methods=["GET"]),
]
