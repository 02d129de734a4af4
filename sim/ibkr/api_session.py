"""Session endpoints: tickle, auth status, reauthenticate, ssodh/init, logout, sso/validate (§2)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sim.ibkr import formats
from sim.ibkr.api_common import json_body, sim_of

SSO_TTL_MS = 600_000  # ssoExpires is a ms countdown renewed by tickling (~9.8 min left in §2.2's fixture)


async def tickle(request: Request) -> JSONResponse:
    """§2.2 shape, including the `collission` misspelling and `hmds: {"error": "no bridge"}`."""
    sim = sim_of(request)
    now = sim.now()
    session = sim.session
    elapsed_ms = (now - session.last_tickle).total_seconds() * 1000
    session.tickle(now)
    return JSONResponse({
        "session": session.session_id,
        "ssoExpires": int(max(0.0, SSO_TTL_MS - elapsed_ms)),
        "collission": session.competing,
        "userId": sim.user_id,
        "hmds": {"error": "no bridge"},
        "iserver": {"authStatus": session.auth_status(sim.cfg.server_name)},
    })


async def auth_status(request: Request) -> JSONResponse:
    # POST is documented (§2.1); GET is accepted too (UNCONFIRMED on the real gateway).
    sim = sim_of(request)
    return JSONResponse(sim.session.auth_status(sim.cfg.server_name))


async def reauthenticate(request: Request) -> JSONResponse:
    """GET (newer spec) and POST (older spec, ibind, IBeam) both work (§2.3); a new brokerage session."""
    sim = sim_of(request)
    sim.session.start_brokerage(sim.now())
    return JSONResponse({"message": "triggered"})  # literal UNCONFIRMED (§2.3)


async def ssodh_init(request: Request) -> JSONResponse:
    """§2.4: opens the brokerage session if missing; `compete: true` takes over a competing one."""
    sim = sim_of(request)
    try:
        body = await json_body(request, default={})  # ibind sends {"publish": true, "compete": true}
    except ValueError:
        body = {}
    if not sim.session.authenticated:
        sim.session.start_brokerage(sim.now())
    if isinstance(body, dict) and body.get("compete"):
        sim.session.competing = False
    return JSONResponse(sim.session.auth_status(sim.cfg.server_name))


async def logout(request: Request) -> JSONResponse:
    sim_of(request).session.logout()
    return JSONResponse({"status": True})  # newer spec (§2.5)


async def sso_validate(request: Request) -> JSONResponse:
    """§2.6 fields; `loginType` 2 = paper."""
    sim = sim_of(request)
    now = sim.now()
    return JSONResponse({
        "USER_ID": sim.user_id,
        "USER_NAME": "simuser1",
        "RESULT": True,
        "AUTH_TIME": formats.epoch_ms(sim.session.started_at),
        "SF_ENABLED": False,
        "IS_FREE_TRIAL": False,
        "CREDENTIAL": "simuser1",
        "IP": "127.0.0.1",
        "EXPIRES": SSO_TTL_MS - int((now - sim.session.last_tickle).total_seconds() * 1000) % SSO_TTL_MS,
        "QUALIFIED_FOR_MOBILE_AUTH": None,
        "LANDING_APP": "UNIVERSAL",
        "IS_MASTER": False,
        "lastAccessed": formats.epoch_ms(now),
        "loginType": 2,
        "PAPER_USER_NAME": "simuser1",
        "features": {"env": "PROD", "wlms": True, "realtime": True, "bond": True, "optionChains": True,
                     "calendar": True, "newMf": True},
        "region": "NJ",
    })


ROUTES = [
    Route("/tickle", tickle, methods=["POST", "GET"]),  # §2.2: POST used, GET listed in the pacing table
    Route("/iserver/auth/status", auth_status, methods=["POST", "GET"]),
    Route("/iserver/reauthenticate", reauthenticate, methods=["POST", "GET"]),
    Route("/iserver/auth/ssodh/init", ssodh_init, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/sso/validate", sso_validate, methods=["GET"]),
]
