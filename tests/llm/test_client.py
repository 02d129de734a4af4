"""ChatClient against the stub over HTTP: success, retries on 5xx/429/timeouts only, and the errors' details."""

from __future__ import annotations

import json
import socket
import time

import pytest

from include.llm.client import ChatClient, LLMError, LLMHTTPError, LLMResponseError, LLMTimeoutError
from tests.llm.conftest import API_KEY

PROMPT = [{"role": "system", "content": "s"},
          {"role": "user", "content": 'FEATURES:\n```json\n{"rsi_14": 22.5}\n```'}]  # fmt: skip


def client(stub, **kw) -> ChatClient:
    kw.setdefault("backoff_seconds", 0.01)
    return ChatClient(stub.base_url, "stub-model", kw.pop("api_key", API_KEY), **kw)


def test_success_returns_content_usage_and_timing(stub):
    with client(stub) as c:
        result = c.complete(PROMPT, temperature=0.0, max_tokens=50)
    assert json.loads(result.content) == {"action": "BUY", "confidence": 0.775,
                                          "rationale": "RSI-14 22.50 is oversold (< 30); expecting mean reversion "
                                                       "upward."}  # 0.7 + (30 - 22.5) / 100
    assert result.model == "stub-model" and result.attempts == 1 and result.finish_reason == "stop"
    assert set(result.usage) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert 0 < result.latency_s < 5
    assert json.loads(result.raw)["choices"][0]["message"]["content"] == result.content
    (seen,) = stub.requests()
    assert seen["authorized"] and seen["response_format"] == {"type": "json_object"} and seen["temperature"] == 0.0
    assert "sk-test" not in repr(c)


@pytest.mark.parametrize("mode", ["500", "429"])
def test_transient_error_then_success_is_retried(stub, mode):
    stub.fault(mode, times=1)
    with client(stub, max_retries=2) as c:
        result = c.complete(PROMPT)
    assert result.attempts == 2 and json.loads(result.content)["action"] == "BUY"
    assert [r["fault"] for r in stub.requests()] == [mode, None]


@pytest.mark.parametrize(("mode", "status"), [("500", 500), ("429", 429)])
def test_persistent_error_gives_up_after_the_bounded_retries(stub, mode, status):
    stub.fault(mode, times=None)
    with client(stub, max_retries=2) as c, pytest.raises(LLMHTTPError) as info:
        c.complete(PROMPT)
    assert info.value.status_code == status and info.value.attempts == 3
    assert str(info.value).startswith(f"HTTP {status}:") and str(info.value).endswith("after 3 attempts")
    assert len(stub.requests()) == 3


def test_retry_after_is_honoured(stub):
    stub.fault("429", times=1, retry_after=0.4)
    started = time.monotonic()
    with client(stub, max_retries=1, backoff_seconds=0.0) as c:
        assert c.complete(PROMPT).attempts == 2
    assert time.monotonic() - started >= 0.4


def test_timeout_is_retried_then_reported(stub):
    stub.fault("slow", times=None, delay_seconds=1.5)
    with client(stub, timeout=0.3, max_retries=1) as c, pytest.raises(LLMTimeoutError) as info:
        c.complete(PROMPT)
    assert info.value.attempts == 2 and 0.6 <= info.value.latency_s < 1.5
    assert "no answer within 0.3 s" in str(info.value)


def test_slow_once_then_success(stub):
    stub.fault("slow", times=1, delay_seconds=1.0)
    with client(stub, timeout=0.3, max_retries=1) as c:
        result = c.complete(PROMPT)
    assert result.attempts == 2 and result.latency_s >= 0.3


def test_client_errors_are_not_retried(stub):
    with client(stub, api_key="wrong", max_retries=3) as c, pytest.raises(LLMHTTPError) as info:
        c.complete(PROMPT)
    assert info.value.status_code == 401 and info.value.attempts == 1
    assert len(stub.requests()) == 1


def test_unreachable_server_is_not_retried():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed as soon as the block ends: connection refused
    with ChatClient(f"http://127.0.0.1:{port}/v1", "m", max_retries=3) as c, pytest.raises(LLMError) as info:
        c.complete(PROMPT)
    assert type(info.value) is LLMError and info.value.attempts == 1 and "cannot reach" in str(info.value)


def test_a_200_that_is_not_a_chat_completion(stub):
    stub.fault("not_chat")
    with client(stub) as c, pytest.raises(LLMResponseError, match="not a chat completion"):
        c.complete(PROMPT)


def test_per_request_fault_header(stub):
    with client(stub, max_retries=0) as c, pytest.raises(LLMHTTPError):
        c.complete(PROMPT, headers={"X-Stub-Fault": "500"})
    with client(stub) as c:
        assert c.complete(PROMPT).attempts == 1  # the header applied to that one request only


def test_bad_arguments():
    with pytest.raises(ValueError, match="must start with http"):
        ChatClient("localhost:11434", "m")
    with pytest.raises(ValueError, match="model name is empty"):
        ChatClient("http://localhost:11434/v1", "")
