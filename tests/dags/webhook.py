"""A webhook endpoint for alert channels in tests: answers 200 to any POST under /hook and keeps nothing."""

from __future__ import annotations

from typing import Any


def receiver_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def hook(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])])
