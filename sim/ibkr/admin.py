"""Test-control API under `/sim/admin` (not part of the IBKR surface): state, stats, session, faults,
runtime config, clock, bar overrides, halts, order book, reset, and positions/orders injected from outside
the API (reconciliation tests)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sim.ibkr.api_common import json_body, sim_of
from sim.ibkr.config import FILL_MODES, SESSION_STATES
from sim.ibkr.state import SimState, error

_RUNTIME = {"rate_limits": bool, "fill_mode": str, "history_latency_ms": int, "global_rate_per_sec": float,
            "history_max_concurrent": int, "idle_timeout_s": float, "penalty_box_s": float}


def _config_view(sim: SimState) -> dict[str, Any]:
    view = {key: getattr(sim.cfg, key) for key in _RUNTIME}
    view["questions"] = list(sim.cfg.questions) if sim.cfg.questions is not None else None
    return view


async def _body(request: Request) -> dict[str, Any]:
    body = await json_body(request, default={})
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body


async def get_state(request: Request) -> JSONResponse:
    sim = sim_of(request)
    sim.session.housekeep(sim.now(), sim.cfg.idle_timeout_s)
    return JSONResponse({
        "session": sim.session.state, "primed": sim.session.primed, "competing": sim.session.competing,
        "account_id": sim.cfg.account_id, "now": sim.now().isoformat(), "clock": sim.clock.describe(),
        "faults": sim.faults.as_list(), "stats": sim.stats.as_dict(), "config": _config_view(sim),
        "halted": sorted(sim.halted), "subscriptions": sorted(sim.session.subscriptions),
        "suppressed_questions": sorted(sim.session.suppressed_questions),
    })


async def get_stats(request: Request) -> JSONResponse:
    return JSONResponse(sim_of(request).stats.as_dict())


async def reset_stats(request: Request) -> JSONResponse:
    sim = sim_of(request)
    sim.stats.reset()
    return JSONResponse(sim.stats.as_dict())


async def set_session(request: Request) -> JSONResponse:
    sim = sim_of(request)
    try:
        body = await _body(request)
    except ValueError as exc:
        return error(400, str(exc))
    session, now = sim.session, sim.now()
    state = body.get("state", session.state)
    if state not in SESSION_STATES:
        return error(400, f"state must be one of {SESSION_STATES}")
    if state == "authenticated" and not session.authenticated:
        session.start_brokerage(now)
    elif state == "sso_only":
        session.drop_brokerage()
    elif state == "logged_out":
        session.logout()
    if "competing" in body:
        session.competing = bool(body["competing"])
    if "primed" in body:
        session.prime(now) if body["primed"] and session.authenticated else session.unprime()
    session.tickle(now)  # a state set by the test starts a fresh idle period
    return await get_state(request)


async def add_fault(request: Request) -> JSONResponse:
    sim = sim_of(request)
    try:
        fault = sim.faults.add(await _body(request))
    except (ValueError, TypeError) as exc:  # includes re.error
        return error(400, str(exc))
    return JSONResponse(fault.as_dict())


async def clear_faults(request: Request) -> JSONResponse:
    sim_of(request).faults.clear()
    return JSONResponse({"faults": []})


async def set_config(request: Request) -> JSONResponse:
    sim = sim_of(request)
    try:
        body = await _body(request)
        changes: dict[str, Any] = {}
        for key, value in body.items():
            if key == "questions":
                changes[key] = tuple(str(v) for v in value) if value is not None else None
            elif key in _RUNTIME:
                changes[key] = _RUNTIME[key](value)
            else:
                raise ValueError(f"unknown or read-only setting: {key}")
        if changes.get("fill_mode", sim.cfg.fill_mode) not in FILL_MODES:
            raise ValueError(f"fill_mode must be one of {FILL_MODES}")
        sim.configure(**changes)
    except (ValueError, TypeError) as exc:
        return error(400, str(exc))
    return JSONResponse(_config_view(sim))


async def set_clock(request: Request) -> JSONResponse:
    """`{"now": iso | null, "running": bool}`: fixed instant, running from an instant, or real time.
    A jump counts as elapsed time (idle timeout, nightly reset) unless `"keep_session": true`."""
    sim = sim_of(request)
    try:
        body = await _body(request)
        raw = body.get("now")
        when = datetime.fromisoformat(raw.replace("Z", "+00:00")) if raw is not None else None
        if when is not None and when.tzinfo is None:
            raise ValueError("now must carry a timezone (e.g. 2025-01-02T15:00:00Z)")
    except (ValueError, AttributeError) as exc:
        return error(400, f"invalid now: {exc}")
    sim.clock.set(when, running=bool(body.get("running", False)))
    if body.get("keep_session"):
        now = sim.now()
        sim.session.tickle(now)
        if sim.session.primed:
            sim.session.primed_at = now
    return JSONResponse(sim.clock.describe())


async def set_bars(request: Request) -> JSONResponse:
    sim = sim_of(request)
    try:
        body = await _body(request)
        inst = sim.registry.get(str(body.get("symbol", "")))
        if inst is None:
            return error(404, f"unknown symbol: {body.get('symbol')}")
        if "no_data" in body:
            sim.bars.set_no_data(inst.symbol, bool(body["no_data"]))
        bars = body.get("bars") or []
        if not isinstance(bars, list) or not all(isinstance(b, dict) and "date" in b for b in bars):
            raise ValueError('bars must be a list of {"date": "YYYY-MM-DD", "o", "h", "l", "c", "v"}')
        for bar in bars:
            date.fromisoformat(str(bar["date"]))
        sim.bars.override(inst.symbol, bars)
    except ValueError as exc:
        return error(400, str(exc))
    no_data = inst.symbol in sim.bars.no_data
    return JSONResponse({"symbol": inst.symbol, "overrides": len(bars), "no_data": no_data})


async def set_halt(request: Request) -> JSONResponse:
    sim = sim_of(request)
    try:
        body = await _body(request)
    except ValueError as exc:
        return error(400, str(exc))
    inst = sim.registry.get(str(body.get("symbol", "")))
    if inst is None:
        return error(404, f"unknown symbol: {body.get('symbol')}")
    (sim.halted.add if body.get("halted", True) else sim.halted.discard)(inst.symbol)
    return JSONResponse({"symbol": inst.symbol, "halted": inst.symbol in sim.halted})


async def list_orders(request: Request) -> JSONResponse:
    """Every order ever accepted, plus placements still waiting for a reply (tests assert no duplicates)."""
    sim = sim_of(request)
    sim.sync_orders(sim.now())
    orders = [{
        "order_id": o.order_id, "cOID": o.coid, "status": o.status, "symbol": o.inst.symbol,
        "conid": o.inst.conid, "side": o.side, "order_type": o.order_type, "quantity": o.qty,
        "price": o.price,
        "aux_price": o.aux_price, "tif": o.tif, "filled": o.filled, "avg_price": o.avg_price,
        "placed_at": o.placed_at.isoformat(), "updated_at": o.updated_at.isoformat(),
        "fills": [{"execution_id": f.execution_id, "qty": f.qty, "price": f.price, "commission": f.commission,
                   "at": f.at.isoformat()} for f in o.fills],
    } for o in sim.orders.orders.values()]
    pending = [{"reply_id": rid, "cOIDs": p.coids, "remaining": p.remaining}
               for rid, p in sim.orders.pending.items()]
    return JSONResponse({"orders": orders, "pending": pending})


async def inject_position(request: Request) -> JSONResponse:
    """`{"symbol", "qty", "avg_cost"}`: a position that appeared outside the API (another platform, a transfer);
    sets the holding to `qty` without an execution, so reconciliation finds no order that explains it."""
    sim = sim_of(request)
    try:
        body = await _body(request)
        inst = sim.registry.get(str(body.get("symbol", "")))
        if inst is None:
            return error(404, f"unknown symbol: {body.get('symbol')}")
        qty, avg = float(body["qty"]), float(body.get("avg_cost", 0.0))
    except (ValueError, TypeError, KeyError) as exc:
        return error(400, f"invalid position: {exc}")
    sim.portfolio.set_position(inst, qty, avg)
    return JSONResponse({"symbol": inst.symbol, "conid": inst.conid, "qty": qty, "avg_cost": avg})


async def inject_order(request: Request) -> JSONResponse:
    """An order placed outside the system (TWS, another app): the IBKR order body (`conid` or `symbol`, `side`,
    `orderType`, `quantity`, `price`, optional `cOID`), accepted without questions or buying-power checks."""
    sim = sim_of(request)
    try:
        body = await _body(request)
        if "conid" not in body and "symbol" in body:
            inst = sim.registry.get(str(body["symbol"]))
            if inst is None:
                return error(404, f"unknown symbol: {body['symbol']}")
            body = {**body, "conid": inst.conid}
        now = sim.now()
        placed = sim.orders.inject(body, sim.cfg.account_id, now, sim.venue(now))
    except ValueError as exc:
        return error(400, str(exc))
    return JSONResponse(placed)


async def reset(request: Request) -> JSONResponse:
    request.app.state.sim = sim_of(request).reset()
    return await get_state(request)


ROUTES = [
    Route("/state", get_state, methods=["GET"]),
    Route("/stats", get_stats, methods=["GET"]),
    Route("/stats/reset", reset_stats, methods=["POST"]),
    Route("/session", set_session, methods=["POST"]),
    Route("/faults", add_fault, methods=["POST"]),
    Route("/faults", clear_faults, methods=["DELETE"]),
    Route("/config", set_config, methods=["POST"]),
    Route("/clock", set_clock, methods=["POST"]),
    Route("/bars", set_bars, methods=["POST"]),
    Route("/halt", set_halt, methods=["POST"]),
    Route("/orders", list_orders, methods=["GET"]),
    Route("/orders", inject_order, methods=["POST"]),
    Route("/positions", inject_position, methods=["POST"]),
    Route("/reset", reset, methods=["POST"]),
]
