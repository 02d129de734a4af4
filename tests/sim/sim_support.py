"""Constants and helpers shared by the gateway simulator tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from starlette.testclient import TestClient

API = "/v1/api"
ADMIN = "/sim/admin"
IN_SESSION = datetime(2025, 1, 2, 15, 0, tzinfo=UTC)  # Thursday 10:00 New York, XNYS open
WEEKEND = datetime(2025, 1, 4, 15, 0, tzinfo=UTC)  # Saturday
HOLIDAY = datetime(2024, 12, 25, 15, 0, tzinfo=UTC)  # Christmas
AAPL, SPY, TSLA = 265598, 756733, 76792991

ClientFactory = Callable[..., TestClient]


def snapshot(client: TestClient, conids: str, fields: str) -> list[dict]:
    """Pre-flight then the real call, as ibind does (§5)."""
    url = f"{API}/iserver/marketdata/snapshot?conids={conids}&fields={fields}"
    client.get(url)
    response = client.get(url)
    assert response.status_code == 200
    return response.json()
