"""A local OpenAI-compatible Chat Completions stub for tests and ``make demo`` (never a production fallback).

It answers deterministically from the FEATURES JSON in the prompt (RSI-14 < 30 -> BUY, > 70 -> SELL, else HOLD)
and misbehaves on request: ``POST /admin/faults {"mode": "500", "times": 1}`` queues a fault for the next
requests, or the header ``X-Stub-Fault: slow`` (with ``X-Stub-Delay: 2``) applies one to a single request.
``GET /admin/requests`` lists what was received. Run: ``python -m sim.llm_stub --port 8089``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sim.threaded_server import ThreadedServer

FAULT_MODES = ("invalid_json", "out_of_range", "missing_fields", "wrong_action", "empty", "fenced", "not_chat",
               "slow", "500", "429")  # fmt: skip
DEFAULT_MODEL = "stub-signal-1"
_FEATURES_RE = re.compile(r"FEATURES[^\n]*\n```json\s*(\{.*?\})\s*```", re.DOTALL)


def decide(features: dict[str, Any] | None) -> dict[str, Any]:
    """The stub's rule: RSI-14 below 30 -> BUY, above 70 -> SELL, else HOLD; confidence grows with the distance."""
    rsi = (features or {}).get("rsi_14")
    if not isinstance(rsi, int | float):
        return {"action": "HOLD", "confidence": 0.5, "rationale": "RSI-14 not available in the prompt."}
    if rsi < 30:
        return {"action": "BUY", "confidence": round(min(0.95, 0.7 + (30 - rsi) / 100), 4),
                "rationale": f"RSI-14 {rsi:.2f} is oversold (< 30); expecting mean reversion upward."}
    if rsi > 70:
        return {"action": "SELL", "confidence": round(min(0.95, 0.7 + (rsi - 70) / 100), 4),
                "rationale": f"RSI-14 {rsi:.2f} is overbought (> 70); reducing exposure."}
    return {"action": "HOLD", "confidence": 0.6, "rationale": f"RSI-14 {rsi:.2f} is neutral (30..70)."}


def _prompt_features(messages: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, bool]:
    """The FEATURES object from the last user message, and whether an image part was attached."""
    text, has_image = "", False
    for message in messages:
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, list):
            has_image = has_image or any(p.get("type") == "image_url" for p in content if isinstance(p, dict))
            content = "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
        text = str(content or "")
    match = _FEATURES_RE.search(text)
    if not match:
        return None, has_image
    try:
        return json.loads(match.group(1)), has_image
    except ValueError:
        return None, has_image


@dataclass
class _Fault:
    mode: str
    times: int | None  # None: until reset
    delay_seconds: float = 2.0
    retry_after: float = 0.0


@dataclass
class StubState:
    api_key: str | None = None
    model: str = DEFAULT_MODEL
    faults: list[_Fault] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_fault(self, request: Request) -> _Fault | None:
        header = request.headers.get("x-stub-fault")
        if header:
            return _Fault(header, 1, float(request.headers.get("x-stub-delay", 2.0)))
        with self.lock:
            if not self.faults:
                return None
            fault = self.faults[0]
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.pop(0)
            return fault


def _completion(state: StubState, model: str, content: str, prompt_chars: int) -> dict[str, Any]:
    prompt_tokens, completion_tokens = max(1, prompt_chars // 4), max(1, len(content) // 4)
    return {
        "id": f"chatcmpl-stub-{len(state.requests)}", "object": "chat.completion", "created": int(time.time()),
        "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }  # fmt: skip


def _faulty_content(mode: str, answer: dict[str, Any]) -> str:
    if mode == "invalid_json":
        return f"I would {answer['action']} with confidence {answer['confidence']} because {{momentum"
    if mode == "out_of_range":
        return json.dumps({**answer, "confidence": 1.7})
    if mode == "missing_fields":
        return json.dumps({"action": answer["action"]})
    if mode == "wrong_action":
        return json.dumps({**answer, "action": "BUY_MORE"})
    if mode == "empty":
        return ""
    if mode == "fenced":
        return "```json\n" + json.dumps(answer) + "\n```"
    return json.dumps(answer)


def create_app(state: StubState | None = None) -> Starlette:
    state = state or StubState()

    async def chat(request: Request) -> Response:
        try:
            body = await request.json()
            messages = body["messages"]
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": {"message": "body must be JSON with 'messages'"}}, status_code=400)
        authorized = state.api_key is None or request.headers.get("authorization") == f"Bearer {state.api_key}"
        if request.headers.get("x-stub-fault", FAULT_MODES[0]) not in FAULT_MODES:
            return JSONResponse({"error": {"message": f"X-Stub-Fault must be one of {FAULT_MODES}"}}, status_code=400)
        fault = state.next_fault(request) if authorized else None
        features, has_image = _prompt_features(messages)
        with state.lock:
            state.requests.append({
                "n": len(state.requests) + 1, "model": body.get("model"), "fault": fault.mode if fault else None,
                "authorized": authorized, "has_image": has_image, "features": features,
                "response_format": body.get("response_format"), "temperature": body.get("temperature"),
            })  # fmt: skip
        if not authorized:
            return JSONResponse({"error": {"message": "invalid API key"}}, status_code=401)
        mode = fault.mode if fault else None
        if mode == "slow":
            await asyncio.sleep(fault.delay_seconds)
        if mode == "500":
            return JSONResponse({"error": {"message": "stub: internal error (injected)"}}, status_code=500)
        if mode == "429":
            return JSONResponse({"error": {"message": "stub: rate limited (injected)"}}, status_code=429,
                                headers={"Retry-After": f"{fault.retry_after:g}"})
        if mode == "not_chat":
            return JSONResponse({"result": "not a chat completion"})
        answer = decide(features)
        if has_image:
            answer["rationale"] += " Chart image received."
        content = _faulty_content(mode or "", answer)
        prompt_chars = len(json.dumps(messages))
        return JSONResponse(_completion(state, str(body.get("model") or state.model), content, prompt_chars))

    async def models(_: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": state.model, "object": "model"}]})

    async def add_fault(request: Request) -> Response:
        body = await request.json()
        mode = body.get("mode")
        if mode not in FAULT_MODES:
            return JSONResponse({"error": f"mode must be one of {FAULT_MODES}"}, status_code=400)
        with state.lock:
            state.faults.append(_Fault(mode, body.get("times", 1), float(body.get("delay_seconds", 2.0)),
                                       float(body.get("retry_after", 0.0))))
        return JSONResponse({"queued": mode})

    async def reset(_: Request) -> Response:
        with state.lock:
            state.faults.clear()
            state.requests.clear()
        return JSONResponse({"reset": True})

    async def requests(_: Request) -> Response:
        with state.lock:
            return JSONResponse(list(state.requests))

    async def health(_: Request) -> Response:
        return JSONResponse({"ok": True})

    app = Starlette(routes=[
        Route("/v1/chat/completions", chat, methods=["POST"]), Route("/v1/models", models),
        Route("/admin/faults", add_fault, methods=["POST"]), Route("/admin/reset", reset, methods=["POST"]),
        Route("/admin/requests", requests), Route("/health", health),
    ])  # fmt: skip
    app.state.stub = state
    return app


class StubServer(ThreadedServer):
    """``with StubServer() as stub: ChatClient(stub.base_url, "stub")`` (uvicorn in a daemon thread)."""

    name = "llm-stub"

    def __init__(self, port: int = 0, host: str = "127.0.0.1", api_key: str | None = None) -> None:
        self.state = StubState(api_key=api_key)
        super().__init__(create_app(self.state), port, host)

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    @property
    def admin_url(self) -> str:
        return self.root_url + "/admin"

    def uvicorn_options(self) -> dict[str, Any]:
        return {"timeout_graceful_shutdown": 1}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sim.llm_stub", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY'")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model name reported when the request names none")
    args = parser.parse_args(argv)
    print(f"LLM stub (OpenAI-compatible) on http://{args.host}:{args.port}/v1", flush=True)
    uvicorn.run(create_app(StubState(api_key=args.api_key, model=args.model)), host=args.host, port=args.port,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
