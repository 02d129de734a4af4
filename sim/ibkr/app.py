"""ASGI app factory: routing only. State lives on `app.state.sim`, so several apps can share a process."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount

from sim.ibkr import admin, api_account, api_market, api_orders, api_session
from sim.ibkr.config import SimulatorConfig
from sim.ibkr.exchange import warm_up
from sim.ibkr.gate import GatewayGate
from sim.ibkr.state import SimState

API_BASE = "/v1/api"
ADMIN_BASE = "/sim/admin"


def create_app(config: SimulatorConfig | None = None) -> Starlette:
    config = config or SimulatorConfig()
    warm_up(config.history_start)  # the XNYS table takes ~1.5 s to build; do it off the request path
    api = [*api_session.ROUTES, *api_market.ROUTES, *api_account.ROUTES, *api_orders.ROUTES]
    app = Starlette(
        routes=[
            Mount(API_BASE, routes=api),
            Mount("/v1/portal", routes=api),  # IBeam's session calls use /v1/portal (§1)
            Mount(ADMIN_BASE, routes=admin.ROUTES),
        ],
        middleware=[Middleware(GatewayGate)],
    )
    app.state.sim = SimState(config)
    return app
