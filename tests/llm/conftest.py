"""The local OpenAI-compatible stub, served over real HTTP for the session and reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sim.llm_stub import StubServer

API_KEY = "sk-test-stub-key"


@pytest.fixture(scope="session")
def llm_stub_server() -> Iterator[StubServer]:
    with StubServer(api_key=API_KEY) as server:
        yield server


class Stub:
    def __init__(self, server: StubServer) -> None:
        self.server, self.base_url = server, server.base_url

    def fault(self, mode: str, times: int | None = 1, **extra: float) -> None:
        httpx.post(f"{self.server.admin_url}/faults", json={"mode": mode, "times": times, **extra},
                   timeout=5).raise_for_status()

    def requests(self) -> list[dict]:
        return httpx.get(f"{self.server.admin_url}/requests", timeout=5).json()


@pytest.fixture
def stub(llm_stub_server: StubServer) -> Stub:
    httpx.post(f"{llm_stub_server.admin_url}/reset", timeout=5).raise_for_status()
    return Stub(llm_stub_server)
