"""Fixtures for the execution tests: an unpaced client against the session simulator (pacing off on both
sides so the live-orders pre-flight does not cost 5 s per test; one test keeps IBKR's pacing on)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from include.ibkr.client import IBKRClient
from tests.execution.support import admin


@pytest.fixture
def sim(simulator: Any) -> Any:
    """The reset session simulator (fill_mode immediate) without pacing and without order questions."""
    admin(simulator, "/config", {"rate_limits": False, "questions": []})
    return simulator


def make_client(sim: Any, **kw: Any) -> IBKRClient:
    options: dict[str, Any] = {"rate_per_sec": None, "endpoint_pacing": False, "backoff_initial": 0.01,
                               "backoff_max": 0.05, "timeout": 5.0}
    options.update(kw)
    return IBKRClient(sim.base_url, **options)


@pytest.fixture
def client(sim: Any) -> Iterator[IBKRClient]:
    with make_client(sim) as c:
        yield c
