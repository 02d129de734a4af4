"""OpenAI-compatible Chat Completions client over httpx (OpenAI, vLLM, Ollama's /v1, the local stub) with bounded
retries on timeouts, 5xx and 429 only. Errors and what callers do with them: docs/strategies.md.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from include.tls import verified_context


class LLMError(Exception):
    """The call produced no usable completion. ``attempts``/``latency_s`` describe what was tried."""

    def __init__(self, message: str, *, attempts: int = 0, latency_s: float = 0.0, status_code: int | None = None,
                 raw: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.attempts, self.latency_s, self.status_code = attempts, latency_s, status_code
        self.raw, self.retry_after = raw, retry_after


class LLMTimeoutError(LLMError):
    """No answer within the timeout (retried)."""


class LLMHTTPError(LLMError):
    """A non-2xx answer; 5xx and 429 are retried, 4xx is not."""


class LLMResponseError(LLMError):
    """A 2xx answer that is not a chat completion (no JSON body, no choices)."""


@dataclass(frozen=True)
class ChatResult:
    content: str | None  # the assistant message text
    raw: str  # the HTTP response body, verbatim (logged to MLflow)
    model: str  # the model that answered (as reported by the server)
    latency_s: float  # wall time of the whole call, retries included
    attempts: int
    usage: dict[str, Any] | None
    finish_reason: str | None


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, LLMTimeoutError):
        return True
    return isinstance(exc, LLMHTTPError) and exc.status_code is not None and (
        exc.status_code == 429 or exc.status_code >= 500
    )


class ChatClient:
    """``ChatClient(base_url="http://localhost:11434/v1", model="llama3.1").complete(messages)``."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, *, timeout: float = 30.0,
                 max_retries: int = 2, backoff_seconds: float = 0.5, backoff_max: float = 8.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"LLM base URL must start with http:// or https://, got {base_url!r}")
        if not model:
            raise ValueError("LLM model name is empty")
        self.base_url, self.model = base_url.rstrip("/"), model
        self.timeout, self.max_retries = timeout, max_retries
        self._backoff, self._backoff_max = backoff_seconds, backoff_max
        headers = {"Content-Type": "application/json", "User-Agent": "ibkr-airflow-trading/1"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers, transport=transport,
                                  verify=verified_context())

    def __repr__(self) -> str:  # never show the key
        return f"ChatClient(base_url={self.base_url!r}, model={self.model!r}, timeout={self.timeout})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, LLMError) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), self._backoff_max)
        return min(self._backoff * 2 ** (state.attempt_number - 1), self._backoff_max)

    def _post_once(self, body: dict[str, Any], headers: dict[str, str] | None) -> tuple[httpx.Response, str]:
        try:
            response = self._http.post("/chat/completions", json=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise LLMTimeoutError(f"no answer within {self.timeout:g} s ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise LLMError(f"cannot reach {self.base_url}: {type(exc).__name__}: {exc}") from exc
        text = response.text
        if response.status_code >= 400:
            retry_after = None
            with contextlib.suppress(ValueError):
                retry_after = float(response.headers.get("retry-after", ""))
            raise LLMHTTPError(f"HTTP {response.status_code}: {text[:300]}", status_code=response.status_code,
                               raw=text, retry_after=retry_after)
        return response, text

    def complete(self, messages: list[dict[str, Any]], *, temperature: float = 0.0, max_tokens: int | None = None,
                 json_mode: bool = True, headers: dict[str, str] | None = None) -> ChatResult:
        body: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": temperature}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if json_mode:
            body["response_format"] = {"type": "json_object"}
        started = time.monotonic()
        attempts = 0
        retrying = Retrying(retry=retry_if_exception(_retryable), stop=stop_after_attempt(self.max_retries + 1),
                            wait=self._wait, reraise=True)
        try:
            for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    response, text = self._post_once(body, headers)
        except LLMError as exc:
            exc.attempts, exc.latency_s = attempts, round(time.monotonic() - started, 4)
            tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}"
            exc.args = (f"{exc.args[0]}{tries}",)
            raise
        latency = round(time.monotonic() - started, 4)
        try:
            payload = json.loads(text)
            choice = payload["choices"][0]
            content = choice["message"].get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise LLMResponseError(f"not a chat completion: {text[:300]}", attempts=attempts, latency_s=latency,
                                   status_code=response.status_code, raw=text) from None
        if isinstance(content, list):  # some servers return content parts even for text
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return ChatResult(content=content, raw=text, model=str(payload.get("model") or self.model),
                          latency_s=latency, attempts=attempts, usage=payload.get("usage"),
                          finish_reason=choice.get("finish_reason"))
