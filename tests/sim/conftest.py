"""Fixtures for the gateway simulator tests: apps on a fixed simulated clock."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from sim.ibkr.app import create_app
from sim.ibkr.config import SimulatorConfig
from tests.sim.sim_support import API, IN_SESSION, ClientFactory


@pytest.fixture
def make_client() -> ClientFactory:
    """Client on a fresh app; rate limits off and the clock fixed in a session unless overridden."""

    def factory(**overrides: Any) -> TestClient:
        settings: dict[str, Any] = {"rate_limits": False, "now": IN_SESSION}
        settings.update(overrides)
        return TestClient(create_app(SimulatorConfig(**settings)))

    return factory


@pytest.fixture
def client(make_client: ClientFactory) -> TestClient:
    """Authenticated and primed (`GET /iserver/accounts` already called)."""
    c = make_client()
    assert c.get(f"{API}/iserver/accounts").status_code == 200
    return c
