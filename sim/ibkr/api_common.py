"""Helpers shared by the endpoint modules."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from sim.ibkr.state import SimState

_NO_BODY = object()


def sim_of(request: Request) -> SimState:
    return request.app.state.sim


class BodyError(ValueError):
    """The request body is not valid JSON: 400."""


async def json_body(request: Request, default: Any = _NO_BODY) -> Any:
    raw = await request.body()
    if not raw.strip():
        if default is _NO_BODY:
            raise BodyError("request body is required")
        return default
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BodyError(f"invalid JSON body: {exc}") from exc
